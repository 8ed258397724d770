"""Every parameter of the stack, declared once: name, default, range, description, read-only.

The nodes declare their parameters from these tables (vla_ros.nodes.parameters), `vla-ros
eval` and `vla-ros demo` read config/vla.yaml through them (read_params_file), and values from
either place pass the same check. Defaults come from the core dataclasses that use them.
"""

from dataclasses import dataclass, fields, replace
import math
from pathlib import Path
from typing import Any

from vla_ros.core.avoidance import AvoidanceConfig
from vla_ros.core.collision_monitor import MonitorConfig, REQUIRE_SCAN
from vla_ros.core.exploration import ExplorationConfig, MAX_VIEW_TILES
from vla_ros.core.footprint import Footprint
from vla_ros.core.images import DEFAULT_MAX_PIXELS
from vla_ros.core.mapping import GridConfig
from vla_ros.core.motion import MotionConfig
from vla_ros.core.policy import BEHAVIOURS, DEFAULT_INTENTS, Intent, ServoConfig
from vla_ros.core.safety import INPUT_TIMEOUT_S, SafetyLimits
from vla_ros.core.segmentation import Fovea, MASK_ENCODINGS
from vla_ros.core.verification import VerifierConfig

DEVICES = ('auto', 'cpu', 'cuda')
DTYPE_NAMES = ('float32', 'bfloat16', 'float16')
SEARCH_DIRECTIONS = {'left': 1.0, 'right': -1.0}
# The runtime's choices (core.backends and core.preprocessing act on them); kept here, away
# from torch, so that a node that runs no model (sim_bridge) declares its parameters without it.
BACKENDS = ('auto', 'torch', 'openvino')
PRECISIONS = ('default', 'f32', 'int8')
COMPILE_MODES = ('none', 'default', 'reduce-overhead')
PREPROCESSING = ('auto', 'processor', 'torch')


class ConfigError(ValueError):
    """A parameter value that cannot be used; the message names it and says what fits."""


@dataclass(frozen=True)
class Param:
    name: str
    default: Any  # bool, int, float, str or tuple of str: the type every value must have
    description: str
    range: tuple = None  # inclusive (low, high) for numbers
    choices: tuple = ()  # allowed strings
    read_only: bool = False

    def check(self, value):
        """`value` as this parameter holds it; ConfigError when it does not fit."""
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            # rclpy refuses it too: the node would not start with this file.
            raise ConfigError(f'{self.name}: write {value}.0, a float (an integer is refused)')
        if kind is tuple:
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(item, str) for item in value):
                raise ConfigError(f'{self.name}: expected a list of strings, got {value!r}')
            value = tuple(value)
        elif kind is str and isinstance(value, bool) and str(value).lower() in self.choices:
            raise ConfigError(f"{self.name}: write '{str(value).lower()}' in quotes (a string: "
                              f'one of {", ".join(self.choices)}), got {value!r}')
        elif type(value) is not kind:
            raise ConfigError(f'{self.name}: expected {kind.__name__}, got {value!r}')
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            raise ConfigError(f'{self.name}: {value!r} is outside [{self.range[0]:g}, '
                              f'{self.range[1]:g}]')
        if self.choices and value not in self.choices:
            raise ConfigError(f'{self.name}: {value!r} is not one of {", ".join(self.choices)}')
        return value


def table(*groups) -> dict:
    """Name -> Param, from groups of Params; a name may appear once."""
    result = {}
    for param in (param for group in groups for param in group):
        if param.name in result:
            raise ValueError(f'parameter {param.name} declared twice')
        result[param.name] = param
    return result


# Every model node ---------------------------------------------------------------------------
LIFECYCLE = (
    Param('autostart', True, 'configure and activate at start (a managed node); false: wait '
          'for `ros2 lifecycle set <node> configure` and `activate`', read_only=True),
)


def model_params(kind: str, rate_hz: float) -> tuple:
    return (
        Param('model', '', f'{kind} model: a Hugging Face id or a local folder written by '
              'save_pretrained(); empty = the embedded default in share/vla_ros/models',
              read_only=True),
        Param('device', 'auto', 'inference device', choices=DEVICES, read_only=True),
        Param('dtype', 'float32', 'weight dtype (float16 needs CUDA)', choices=DTYPE_NAMES,
              read_only=True),
        Param('backend', 'auto', 'inference runtime: torch; openvino (CPU; the model is converted '
              'at the first start and cached, see docs/models.md); auto = openvino on a '
              'CPU where it is installed (with dtype float32), torch otherwise (CUDA)',
              choices=BACKENDS, read_only=True),
        Param('precision', 'default', "OpenVINO's inference precision: default = its choice "
              'for the CPU (bf16 where the CPU has it, else f32), f32 = full precision, int8 = '
              'the image parts quantised (NNCF, calibrated on shipped simulator renders) at the '
              'first start, refused on a CPU without VNNI or AMX (slower there) and with torch; '
              'torch ignores default and f32 (see dtype)', choices=PRECISIONS, read_only=True),
        Param('max_rate_hz', float(rate_hz),
              'most inferences per second; newer inputs replace waiting ones', (0.1, 120.0)),
        Param('cpu_threads', 0, "CPU threads for this node's inference (torch's or "
              "OpenVINO's); 0 = the runtime's default (one per core). Model nodes run side by "
              'side: on a small CPU give each its share', (0, 1024), read_only=True),
        Param('diagnostics_max_drop_fraction', 0.95, '/diagnostics warns when more of the '
              'input than this is dropped to keep up', (0.0, 1.0)),
    )


STREAM = (
    Param('diagnostics_stale_input_s', 5.0, '/diagnostics warns when no input came for this '
          'long', (0.1, 3600.0)),
)
IMAGE_INPUT = (
    Param('max_image_pixels', DEFAULT_MAX_PIXELS, 'frames with more pixels are dropped with a '
          'warning', (1, 2**31 - 1), read_only=True),
    Param('use_compressed', False, 'subscribe image/compressed (sensor_msgs/CompressedImage) '
          'instead of image', read_only=True),
)
# The image nodes' work on a GPU.
IMAGE_RUNTIME = (
    Param('preprocessing', 'auto', "the images' resize and normalisation: processor = the "
          "model's own (PIL, on the CPU); torch = the same with torch on the model's device "
          '(within one grey level); auto = torch on CUDA, the processor otherwise',
          choices=PREPROCESSING, read_only=True),
    Param('compile_mode', 'none', "backend torch only: torch.compile a frame's image work "
          '(reduce-overhead = CUDA graphs on a GPU, for one frame a call); none = eager. The '
          'first frame compiles, for seconds to minutes', choices=COMPILE_MODES,
          read_only=True),
)
COMMAND_VERBS = Param(
    'command_verbs', (), 'verbs the command grammar accepts besides its own, taking a thing '
    'as "find" does (e.g. fetch, inspect); see docs/commands.md')

# scene_segmenter ----------------------------------------------------------------------------
SEGMENTER_INPUT = (
    Param('input_size', 0, 'CLIPSeg input, pixels square (a multiple of its patch size, e.g. '
          '224 for rd64, whose processor uses 352; at most twice that): fewer patches, less '
          "time a segmentation, coarser masks; 0 = its processor's size. See "
          'benchmarks/README.md, CLIPSeg input size', (0, 1024), read_only=True),
)
PERCEPTION = (
    Param('prompts', (), "fixed prompts; when set they are segmented instead of the command's "
          'object (the first one is the target)'),
    COMMAND_VERBS,
    Param('mask_threshold', 0.5, 'probability a pixel needs to belong to the target',
          (0.0, 1.0)),
    Param('mask_encoding', 'mono8', 'mono8: label image (0 none, i+1 prompt i); 32FC1: '
          'highest probability', choices=MASK_ENCODINGS),
    Param('fovea', True, "also segment the view's middle (half its width and height) at "
          'twice the resolution, for far objects; one more image per frame', read_only=True),
    Param('fovea_top', Fovea.top, "the fovea's top edge as a fraction of the image height: "
          'put the window over the far floor', (0.0, 0.5), read_only=True),
    Param('track_targets', True, 'follow the target from camera frame to frame between '
          "segmentations (optical flow): targets at the camera's rate, each saying how old "
          'its segmentation is; false: a target per segmentation', read_only=True),
    Param('verify_targets', True, "a CLIP must name each region's crop as the target's prompt "
          '(best among verification_contrasts) before it can be the target: refuses '
          'look-alikes', read_only=True),
    Param('verification_model', '', "verify_targets' CLIP: Hugging Face id or folder, best "
          "the camera_embedder's; empty = the embedded default", read_only=True),
    Param('verification_padding', VerifierConfig.padding, "context around a region's box in "
          "its crop, as a fraction of the box's longer side on each side", (0.0, 2.0),
          read_only=True),
    Param('verification_min_area', VerifierConfig.min_area, 'smaller regions (image fraction) '
          "are refused without a check; keep it at most the action_policy's min_target_area",
          (0.0, 1.0), read_only=True),
    Param('verification_recheck_frames', VerifierConfig.recheck_frames, 'a region continuing '
          'one refused in the last frame is refused unchecked for this many frames (or until '
          'its area doubles); 0 = check every frame', (0, 1000), read_only=True),
    Param('verification_contrasts', (), 'what a target could be confused with ("green ball" '
          'for "green pyramid"); empty: no verification (said once at start)', read_only=True),
)

# action_policy ------------------------------------------------------------------------------
_servo, _limits = ServoConfig(), SafetyLimits()
SAFETY = (
    Param('max_linear_mps', _limits.max_linear_mps, 'largest |linear.x| ever sent (m/s)',
          (0.01, 5.0)),
    Param('max_angular_rps', _limits.max_angular_rps, 'largest |angular.z| ever sent (rad/s)',
          (0.01, 10.0)),
    Param('max_linear_accel', _limits.max_linear_accel, 'speed-up limit (m/s^2); braking is '
          'not limited', (0.01, 20.0)),
    Param('max_angular_accel', _limits.max_angular_accel, 'turn speed-up limit (rad/s^2)',
          (0.01, 50.0)),
    *(Param('hard_' + name, getattr(_limits, 'hard_' + name), f'ceiling of {name}: a live '
            f'change of it is refused above this ({unit})', (0.01, high), read_only=True)
      for name, unit, high in (('max_linear_mps', 'm/s', 5.0), ('max_angular_rps', 'rad/s', 10.0),
                               ('max_linear_accel', 'm/s^2', 20.0),
                               ('max_angular_accel', 'rad/s^2', 50.0))),
)
_motion = MotionConfig()
MOTION = (
    Param('small_distance_m', _motion.small_distance_m, 'how far "a little" or "a bit" '
          'forwards or backwards is (m)', (0.01, 2.0)),
    Param('small_angle_deg', _motion.small_angle_deg, 'how far "a little" or "a bit" of a turn '
          'is (degrees)', (1.0, 90.0)),
    Param('slow_fraction', _motion.slow_fraction, '"slowly", "carefully": every speed of the '
          'command times this', (0.05, 1.0)),
    Param('max_motion_distance_m', _motion.max_distance_m, 'a command asking to move farther '
          '("go forward 20 meters") is refused', (0.01, 100.0), read_only=True),
    Param('max_motion_angle_deg', _motion.max_angle_deg, 'a command asking to turn farther is '
          'refused', (1.0, 3600.0), read_only=True),
    Param('max_motion_duration_s', _motion.max_duration_s, 'a command asking to move for '
          'longer ("for 5 minutes") is refused', (0.1, 3600.0), read_only=True),
)
SERVO = (
    Param('turn_gain', _servo.turn_gain, 'rad/s per unit of normalised horizontal target '
          'offset', (0.0, 10.0)),
    Param('max_turn_rps', _servo.max_turn_rps, 'largest turn rate while servoing (rad/s)',
          (0.0, 10.0)),
    Param('centred_tolerance', _servo.centred_tolerance, '|x| under which the robot also '
          'drives forward', (0.0, 1.0)),
    Param('approach_speed_mps', _servo.approach_speed_mps, 'forward speed while the target is '
          'small', (0.0, 5.0)),
    Param('slow_area_fraction', _servo.slow_area_fraction, 'target area from which to slow '
          'down', (0.0, 1.0)),
    Param('arrive_area_fraction', _servo.arrive_area_fraction, 'target area at which the '
          'robot has arrived', (0.0, 1.0)),
    Param('arrive_bottom', _servo.arrive_bottom, "or: the target's lowest row at which it has "
          'arrived (1 = image bottom; a distance cue for things on the floor)', (-1.0, 1.0)),
    Param('arrive_confidence', _servo.arrive_confidence, 'confidence the bottom-edge rule '
          'needs', (0.0, 1.0)),
    Param('arrive_min_area', _servo.arrive_min_area, 'target area the bottom-edge rule needs '
          '(a speck at the bottom edge is the floor, not a near object)', (0.0, 1.0)),
    Param('near_area', _servo.near_area, 'or: once the tracked target was this large, it has '
          'arrived when it vanishes or shrinks under near_shrink of that in one frame (too '
          'close to be seen whole; an approached object only grows)', (0.0, 1.0)),
    Param('near_shrink', _servo.near_shrink, 'the sudden shrink near_area means', (0.0, 1.0)),
    Param('min_approach_fraction', _servo.min_approach_fraction, 'slowest approach as a '
          'fraction of the speed', (0.0, 1.0)),
    Param('search_direction', 'left', 'which way to turn while searching',
          choices=tuple(SEARCH_DIRECTIONS)),
    Param('search_speed_rps', _servo.search_speed_rps, 'turn rate while searching (rad/s)',
          (0.0, 5.0)),
    Param('search_timeout_s', _servo.search_timeout_s, 'stop searching ("not found") after '
          'turning as far as search_speed_rps turns in this long', (0.0, 3600.0)),
    Param('arrival_check_s', _servo.arrival_check_s, 'an arrival seen on a tracked target '
          'waits at most this long, still, for a segmentation of a frame taken since the stop',
          (0.0, 600.0)),
    Param('arrival_margin', _servo.arrival_margin, 'stopped to check an arrival, the target '
          'still counts as arrived this far short of arrive_bottom and arrive_area_fraction '
          "(a mask's edge moves about this much between segmentations)", (0.0, 0.1)),
    Param('search_sweep_rad', _servo.search_sweep_rad, 'a search turns at most this far in '
          "one of the segmenter's cycles (a frame's wait plus its segmentation), slower than "
          "search_speed_rps with a slow segmenter; keep it under the camera's horizontal field "
          'of view', (0.05, 6.3)),
    Param('found_tolerance', _servo.found_tolerance, 'look_for: |x| at which the target is '
          'found', (0.0, 1.0)),
    Param('min_target_area', _servo.min_target_area, 'smaller target regions (image '
          'fraction) are ignored as noise', (0.0, 1.0)),
    Param('confirm_s', _servo.confirm_s, 'a target must be seen this long without a gap '
          'before the robot steers at it (rejects flickering false detections)', (0.0, 10.0)),
    Param('lost_hold_s', _servo.lost_hold_s, 'a tracked target out of sight this long is '
          'lost; until then the robot turns to where it was, without driving', (0.0, 10.0)),
    Param('odometry_hold_s', _servo.odometry_hold_s, 'with fresh odometry (topic odom), a '
          'tracked go_to target out of sight is lost after this long instead (0: odometry '
          'carries nothing); until then the odometry carries where it was and the robot turns '
          'to it, and drives on no faster than its slowest approach where a fresh scan watches '
          'the way, never arriving on it', (0.0, 5.0)),
)
_monitor, _avoidance = MonitorConfig(), AvoidanceConfig()
OBSTACLES = (
    Param('footprint_radius', _monitor.footprint.radius, "the robot's footprint: a circle of "
          'this radius about base_link (m), unless footprint is set', (0.01, 10.0)),
    Param('footprint', '', "or a convex polygon in base_link, Nav2's way: "
          "'[[0.3, 0.25], [0.3, -0.25], [-0.3, -0.25], [-0.3, 0.25]]'; empty = the circle"),
    Param('scan_timeout_s', _monitor.scan_timeout_s, 'a scan older than this is no scan',
          (0.01, 60.0)),
    Param('require_scan', _monitor.require_scan, 'true: no motion without a fresh scan '
          '(stopped: stale scan); auto: so once a scan has come (a scanner that stops stops the '
          'robot: stopped: scan lost), while none has, motion is unmonitored (WARN); false: a '
          'scan is optional, one that came and stopped is said on status and /diagnostics',
          choices=REQUIRE_SCAN, read_only=True),
    Param('laser_pose', '0.0 0.0 0.0', "'x y yaw_deg' of the scanner in base_link (m, m, "
          'degrees)', read_only=True),
    Param('stop_distance_m', _monitor.stop_distance_m, 'no linear motion towards a scan point '
          'the footprint would reach within this (the stop zone)', (0.02, 5.0)),
    Param('slowdown_distance_m', _monitor.slowdown_distance_m, 'slower towards one within '
          'this (the slowdown zone), down to slowdown_min_ratio at the stop zone',
          (0.0, 10.0)),
    Param('slowdown_min_ratio', _monitor.slowdown_min_ratio, 'slowest fraction of the '
          'requested speed in the slowdown zone', (0.01, 1.0)),
    Param('stop_turn_rad', _monitor.stop_turn_rad, 'a polygon footprint: no turn in place '
          'that would sweep it over a scan point within this angle', (0.05, 3.2)),
    Param('avoid_obstacles', _avoidance.enabled, 'go_to goes around what stands between the '
          'robot and its target (false: it stops in front of it)'),
    Param('avoidance_clearance_m', _avoidance.clearance_m, 'kept between the footprint and '
          'obstacles on a detour', (0.0, 2.0)),
    Param('avoidance_lookahead_m', _avoidance.lookahead_m, 'a detour heading must be free '
          'this far (or up to the target)', (0.1, 10.0)),
    Param('target_radius_m', _avoidance.goal_radius_m, "scan points this near the target's "
          'scan return are the target itself, not an obstacle', (0.01, 5.0)),
    Param('blocked_timeout_s', _avoidance.blocked_timeout_s, 'no way found, no progress on '
          "a detour, or held by an obstacle this long: stop and say 'blocked'", (0.1, 3600.0)),
)
_explore, _grid = ExplorationConfig(), GridConfig()
EXPLORATION = (
    Param('explore', _explore.enabled, 'a go_to or look_for whose target is nowhere in view '
          'after the search has turned all round explores: frontiers of an occupancy grid '
          "built from scan and odom, nearest and best-matching views first (needs both; "
          "false: 'not found' there)", read_only=True),
    Param('explore_max_time_s', _explore.max_time_s, "exploring for one command ends after "
          "this long ('not found: explored ... m² in ... s')", (1.0, 3600.0), read_only=True),
    Param('explore_max_distance_m', _explore.max_distance_m, '... or after driving this far '
          '(odometry drifts with distance: the grid is in the odom frame)', (0.5, 1000.0),
          read_only=True),
    Param('explore_speed_mps', _explore.speed_mps, 'driving speed towards a frontier (the '
          'safety limits and the collision monitor apply)', (0.01, 5.0)),
    Param('explore_value_weight', _explore.value_weight, "how much the views' match to the "
          "command (view_embeddings against text_embedding) shortens a frontier's path: 0 = "
          'the nearest first', (0.0, 1.0)),
    Param('explore_margin_m', _explore.margin_m, 'kept between the footprint and occupied '
          'cells on an exploration path', (0.0, 2.0)),
    Param('map_resolution_m', _grid.resolution_m, "the occupancy grid's cell size",
          (0.02, 1.0), read_only=True),
    Param('map_size_m', _grid.size_m, 'the square the grid covers, centred where the robot '
          'was at the first scan', (2.0, 500.0), read_only=True),
    Param('map_publish_period_s', 1.0, 'the grid on exploration_map (nav_msgs/OccupancyGrid, '
          'latched) at most this often; 0 = never', (0.0, 3600.0), read_only=True),
)
CONTROL = (
    Param('control_rate_hz', 20.0, 'cmd_vel publishing rate (Hz)', (1.0, 200.0),
          read_only=True),
    Param('use_stamped', False, 'publish geometry_msgs/TwistStamped (Nav2 Kilted, '
          'ros2_control) instead of Twist', read_only=True),
    Param('frame_id', 'base_link', 'frame_id of TwistStamped and target_marker'),
    Param('input_timeout_s', INPUT_TIMEOUT_S, 'zero output when the inputs the '
          'current intent needs are older than this (judged on a clock that cannot jump)',
          (0.01, 60.0), read_only=True),
    Param('max_segmentation_age_s', 6.0, 'zero output when the segmentation behind the '
          'target (it may have been tracked since) is older than this (or than 5 cycles of a '
          "segmenter seen to be fast, at least 1 s); keep it above the scene_segmenter's "
          'period plus its time a segmentation', (0.05, 600.0), read_only=True),
    Param('input_lost_s', 10.0, 'a command held this long for stale input is given up '
          "('stopped: input lost'): the robot never resumes it when the input comes back",
          (0.1, 3600.0), read_only=True),
    Param('future_stamp_tolerance_s', 0.5, "a target stamped further ahead of this node's "
          'clock is dropped with a warning (clock skew between machines must stay under it)',
          (0.0, 60.0), read_only=True),
    Param('resume_instruction', False, 'follow an instruction given before this node started '
          '(after a restart); false: stay still until a new command', read_only=True),
    Param('camera_hfov_deg', 90.0, 'camera horizontal field of view; turns image x into a '
          'bearing (target_marker, avoidance)', (1.0, 179.0)),
    Param('camera_vfov_deg', 60.0, 'camera vertical field of view; with camera_mount, turns '
          "the target's lowest row into its distance on the floor", (1.0, 179.0)),
    Param('camera_mount', '', "'x height pitch_deg': the camera in base_link (m, m, degrees "
          "down); empty = unknown, the target's range is the scan's return in its direction"),
    Param('camera_bottom_tolerance', 0.0, "how far above the target's true lowest point the "
          "segmenter's lowest row may lie (image units, 2 = the image's height; a coarse or "
          "partial mask). With camera_mount, the scan's return in the target's direction "
          'within the floor distances this allows is taken as the target (a close target '
          'is first matched by the width of its run of returns: docs/obstacles.md)',
          (0.0, 1.0)),
    Param('require_camera_for_motion', True, 'plain motions ("move forward") also need a live '
          'camera stream', read_only=True),
    Param('min_intent_similarity', 0.5, 'cosine similarity an instruction needs to its '
          'nearest intent', (-1.0, 1.0), read_only=True),
    Param('intent_margin', 0.02, 'lead the nearest intent needs over the runner-up',
          (0.0, 2.0), read_only=True),
    replace(COMMAND_VERBS, description='leading phrases stripped from a command to name '
            'its object in status'),
    Param('intents', tuple(intent.name for intent in DEFAULT_INTENTS), 'intent names; each '
          'has intent.<name>.behaviour (stop|motion|go_to|look_for), .phrases, .linear_mps, '
          '.angular_rps, .duration_s', read_only=True),
)


def intent_params(name: str) -> tuple:
    """The intent.<name>.* parameters, defaulting to the built-in intent of that name."""
    built_in = next((intent for intent in DEFAULT_INTENTS if intent.name == name), None)

    def default(key, fallback):
        return getattr(built_in, key) if built_in is not None else fallback

    prefix = f'intent.{name}.'
    return (
        Param(prefix + 'behaviour', default('behaviour', ''), f'intent {name}: behaviour',
              choices=BEHAVIOURS if built_in else ('', *BEHAVIOURS), read_only=True),
        Param(prefix + 'phrases', tuple(default('phrases', ())), f'intent {name}: example '
              'phrasings', read_only=True),
        Param(prefix + 'linear_mps', float(default('linear_mps', 0.0)),
              f'intent {name}: forward speed of a motion (m/s)', (-5.0, 5.0), read_only=True),
        Param(prefix + 'angular_rps', float(default('angular_rps', 0.0)),
              f'intent {name}: turn rate of a motion (rad/s)', (-10.0, 10.0), read_only=True),
        Param(prefix + 'duration_s', float(default('duration_s', 0.0)),
              f'intent {name}: how long a motion runs (0 = until the next command)',
              (0.0, 3600.0), read_only=True),
    )


def build_intents(values: dict) -> tuple:
    """Intents from checked `intents` and `intent.<name>.*` values."""
    intents = []
    for name in values['intents']:
        prefix = f'intent.{name}.'
        behaviour, phrases = values[prefix + 'behaviour'], values[prefix + 'phrases']
        if not behaviour or not phrases:
            raise ConfigError(f"intent '{name}' needs {prefix}behaviour "
                              f'({"|".join(BEHAVIOURS)}) and {prefix}phrases')
        intents.append(Intent(name=name, behaviour=behaviour, phrases=tuple(phrases),
                              linear_mps=values[prefix + 'linear_mps'],
                              angular_rps=values[prefix + 'angular_rps'],
                              duration_s=values[prefix + 'duration_s']))
    return tuple(intents)


def servo_config(values: dict) -> ServoConfig:
    names = {item.name for item in fields(ServoConfig)} - {'search_direction'}
    return ServoConfig(search_direction=SEARCH_DIRECTIONS[values['search_direction']],
                       **{name: values[name] for name in names})


def safety_limits(values: dict) -> SafetyLimits:
    return SafetyLimits(**{param.name: values[param.name] for param in SAFETY})


def parse_numbers(name: str, text: str, count: int = None) -> tuple:
    """Numbers from a parameter written as a list ('[[0.3, 0.2], ...]' or '0 0 0')."""
    import re

    items = [item for item in re.split(r'[\s,\[\]]+', text) if item]
    try:
        numbers = tuple(float(item) for item in items)
    except ValueError:
        raise ConfigError(f'{name}: {text!r} is not a list of numbers') from None
    if not all(math.isfinite(number) for number in numbers):
        raise ConfigError(f'{name}: {text!r} holds NaN or infinity')
    if count is not None and len(numbers) != count:
        raise ConfigError(f'{name}: expected {count} numbers, got {text!r}')
    return numbers


def footprint(values: dict) -> Footprint:
    text = values['footprint'].strip()
    if not text:
        return Footprint(radius=values['footprint_radius'])
    numbers = parse_numbers('footprint', text)
    if len(numbers) % 2:
        raise ConfigError(f'footprint: {text!r} holds an odd count of numbers; write '
                          "'[[x1, y1], [x2, y2], ...]'")
    try:
        return Footprint(polygon=tuple(zip(numbers[::2], numbers[1::2])))
    except ValueError as error:
        raise ConfigError(f'{error} (got {text!r})') from None


def monitor_config(values: dict) -> MonitorConfig:
    try:
        return MonitorConfig(footprint=footprint(values), **{name: values[name] for name in (
            'stop_distance_m', 'slowdown_distance_m', 'slowdown_min_ratio', 'stop_turn_rad',
            'scan_timeout_s', 'require_scan')})
    except ValueError as error:
        raise ConfigError(str(error)) from None


def motion_config(values: dict) -> MotionConfig:
    return MotionConfig(
        small_distance_m=values['small_distance_m'], small_angle_deg=values['small_angle_deg'],
        slow_fraction=values['slow_fraction'], max_distance_m=values['max_motion_distance_m'],
        max_angle_deg=values['max_motion_angle_deg'],
        max_duration_s=values['max_motion_duration_s'])


def avoidance_config(values: dict) -> AvoidanceConfig:
    return AvoidanceConfig(
        enabled=values['avoid_obstacles'], clearance_m=values['avoidance_clearance_m'],
        lookahead_m=values['avoidance_lookahead_m'], goal_radius_m=values['target_radius_m'],
        blocked_timeout_s=values['blocked_timeout_s'], max_turn_rps=values['max_turn_rps'],
        speed_mps=values['approach_speed_mps'])


def exploration_config(values: dict) -> ExplorationConfig:
    return ExplorationConfig(
        enabled=values['explore'], max_time_s=values['explore_max_time_s'],
        max_distance_m=values['explore_max_distance_m'],
        speed_mps=values['explore_speed_mps'], value_weight=values['explore_value_weight'],
        margin_m=values['explore_margin_m'])


def grid_config(values: dict) -> GridConfig:
    return GridConfig(resolution_m=values['map_resolution_m'], size_m=values['map_size_m'])


def camera_mount(values: dict) -> tuple:
    """(x, height, pitch in rad) or () when not given."""
    text = values['camera_mount'].strip()
    if not text:
        return ()
    x, height, pitch = parse_numbers('camera_mount', text, 3)
    if height <= 0 or not -90.0 < pitch < 90.0:
        raise ConfigError(f'camera_mount: {text!r}: height must be > 0 m and the pitch '
                          'within (-90, 90) degrees')
    return x, height, math.radians(pitch)


def laser_pose(values: dict) -> tuple:
    """(x, y, yaw in rad) from 'x y yaw_deg'."""
    x, y, yaw = parse_numbers('laser_pose', values['laser_pose'], 3)
    if not -360.0 <= yaw <= 360.0:
        raise ConfigError(f'laser_pose: yaw {yaw:g} is in degrees, within [-360, 360]')
    return x, y, math.radians(yaw)


def verifier_config(values: dict) -> VerifierConfig | None:
    """The verifier's configuration, or None when verify_targets is off or no contrast is
    listed (verification_off_reason says which).
    """
    contrasts = tuple(item for item in values['verification_contrasts'] if item.strip())
    if not values['verify_targets'] or not contrasts:
        return None
    return VerifierConfig(contrasts=contrasts, padding=values['verification_padding'],
                          min_area=values['verification_min_area'],
                          recheck_frames=values['verification_recheck_frames'])


def verification_off_reason(values: dict) -> str:
    """Why the scene_segmenter runs no verifier ('' when it runs one)."""
    if not values['verify_targets']:
        return 'verify_targets is false'
    if verifier_config(values) is None:
        return ('verification_contrasts lists nothing a target could be confused with: list '
                "your robot's look-alikes (e.g. [red mug, red ball, blue mug]) to turn it on")
    return ''


# The nodes' tables --------------------------------------------------------------------------
NODE_TABLES = {
    'camera_embedder': table(model_params('CLIP', 10.0), LIFECYCLE, STREAM, IMAGE_INPUT,
                             IMAGE_RUNTIME, (
        Param('labels', (), "zero-shot captions, e.g. ['a red ball', 'a blue box']"),
        Param('top_k', 5, 'labels reported in scene_labels', (1, 1000)),
        Param('view_tiles', 3, 'square crops side by side across the middle of each frame, '
              "each embedded too and published on view_embeddings for exploration's value "
              "map (a far thing is a speck in the whole frame at the model's input size); 0 = "
              'the whole frame there, one embedding a frame instead of 1 + view_tiles',
              (0, MAX_VIEW_TILES), read_only=True),
    )),
    'command_embedder': table(model_params('CLIP', 20.0), LIFECYCLE, (
        Param('cache_size', 256, 'distinct commands whose embeddings are kept', (1, 100000),
              read_only=True),
    )),
    'scene_segmenter': table(model_params('CLIPSeg', 5.0), LIFECYCLE, STREAM, IMAGE_INPUT,
                             IMAGE_RUNTIME, SEGMENTER_INPUT, PERCEPTION),
    'action_policy': table(model_params('CLIP', 1.0)[:3], LIFECYCLE, SAFETY, SERVO, MOTION,
                           OBSTACLES, EXPLORATION, CONTROL),  # no rate
}
SHARED = ('use_sim_time', 'device', 'dtype', 'autostart')  # the YAML's /** section


def node_table(node_name: str, values: dict = None) -> dict:
    """The node's table, with the intent.<name>.* parameters the `intents` value names."""
    result = dict(NODE_TABLES[node_name])
    if 'intents' in result:
        names = (values or {}).get('intents', result['intents'].default)
        for name in names:
            result.update({param.name: param for param in intent_params(name)})
    return result


def flatten(tree: dict, prefix: str = '') -> dict:
    """Nested YAML keys as rcl names them: {intent: {stop: {phrases: x}}} -> intent.stop.phrases"""
    names = {}
    for key, value in tree.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            names.update(flatten(value, f'{name}.'))
        else:
            names[name] = value
    return names


def check_values(node_name: str, given: dict) -> dict:
    """Every parameter of the node: `given` values checked, defaults for the rest."""
    params = node_table(node_name, given)
    unknown = sorted(set(given) - set(params) - {'use_sim_time'}
                     - {name for name in given if name.startswith('qos_overrides.')})
    if unknown:
        raise ConfigError(f'{node_name}: unknown parameter(s) {", ".join(unknown)}')
    values = {name: param.check(given[name]) if name in given else param.default
              for name, param in params.items()}
    if 'intents' in values:
        build_intents(values)
    return values


def read_params_file(path, node_name: str) -> dict:
    """A node's checked values from a ROS 2 params file (as rcl applies it to that node:
    `/**` first, then keys that match the node's name in any namespace).
    """
    import yaml

    document = yaml.safe_load(Path(path).read_text()) or {}
    given = {}
    for key in sorted(document, key=lambda key: key != '/**'):  # the shared section first
        if key == '/**' or key == node_name or key.endswith('/' + node_name):
            given.update(flatten((document[key] or {}).get('ros__parameters', {})))
    return check_values(node_name, given)


def parameter_reference() -> str:
    """docs/parameters.md: every node's parameters as Markdown tables, from NODE_TABLES."""
    def cell(text) -> str:
        # Pipes would end the cell; <name> outside a code span would be read as HTML.
        parts = str(text).replace('|', '\\|').replace('\n', ' ').split('`')
        return '`'.join(part if index % 2 else part.replace('<', '&lt;')
                        for index, part in enumerate(parts))

    def shown(value) -> str:
        if isinstance(value, bool):
            return 'true' if value else 'false'
        if isinstance(value, str):
            return repr(value)
        if isinstance(value, tuple):
            return '[' + ', '.join(value) + ']'
        return repr(value)

    def rows(params) -> list:
        lines = ['| parameter | default | range or choices | live or read-only | description |',
                 '|---|---|---|---|---|']
        for param in params:
            if param.range is not None:
                bounds = f'{param.range[0]!r} to {param.range[1]!r}'
            else:
                bounds = ', '.join(f'`{choice}`' if choice else "`''`"
                                   for choice in param.choices)
            lines.append('| ' + ' | '.join(cell(text) for text in (
                f'`{param.name}`', f'`{shown(param.default)}`', bounds,
                'read-only' if param.read_only else 'live', param.description)) + ' |')
        return lines

    lines = ['# Parameters', '',
             '[Back to the README](../README.md). Generated by '
             '`vla_ros.core.config.parameter_reference()` and checked by '
             'test/unit/test_docs.py: edit the tables in vla_ros/core/config.py, not this file.',
             '']
    for node_name, params in NODE_TABLES.items():
        lines += [f'## {node_name}', '', *rows(params.values()), '']
    lines += ['## action_policy: `intent.<name>.*`', '',
              "Each name in action_policy's `intents` has its own `intent.<name>.*` parameters, "
              'declared per intent (`intent_params` in vla_ros/core/config.py); a built-in '
              "intent's defaults are its own. The fields, shown for go_to:", '',
              *rows(replace(param, name=param.name.replace('intent.go_to.', 'intent.<name>.'))
                    for param in intent_params('go_to')), '']
    return '\n'.join(lines)
