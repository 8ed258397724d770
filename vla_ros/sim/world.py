"""A MuJoCo arena with a mobile base and an onboard camera, built from a Scene.

The base is planar (slide x, slide y, hinge yaw) and driven by velocity actuators, which
track (v, w) commands closely while still colliding with objects and walls. Ground truth
(object poses, per-pixel geom ids) is here for the evaluator; the policy never sees it.
"""

from dataclasses import dataclass
import math
import os
import threading

import mujoco
import numpy as np

from vla_ros.core.odometry import Pose2D  # noqa: E402
from vla_ros.sim.scene import object_names, ROBOT_RADIUS, Scene  # noqa: E402

CAMERA_FOVY_DEG = 58.0
BASE_HEIGHT = 0.06  # the body's origin above the floor
CAMERA_X, CAMERA_Z = ROBOT_RADIUS + 0.01, 0.22  # the camera on the body
LASER_HEIGHT = 0.1  # m above the floor, at the base's centre (base_link's origin)
CAMERA_TILT_DEG = 12.0  # looking slightly down, so near objects stay in view
# The camera as the action_policy's camera_mount parameter takes it: x, height, pitch down.
CAMERA_MOUNT = f'{CAMERA_X:.2f} {BASE_HEIGHT + CAMERA_Z:.2f} {CAMERA_TILT_DEG:g}'
PHYSICS_DT = 0.005
_RENDERERS_OF_OTHER_THREADS = []  # see SimWorld.close


def _numbers(values):
    return ' '.join(f'{value:.3f}' for value in values)


def _rgba(rgb, alpha=1.0):
    return _numbers((*rgb, alpha))


def _object_xml(index, item):
    name = f'object{index}'
    rgba = _rgba(item.rgb)
    pose = f'pos="{item.x:.4f} {item.y:.4f} {{z:.4f}}" euler="0 0 {item.yaw:.4f}"'
    size = item.size
    if item.shape == 'ball':
        geom = f'type="sphere" size="{size:.4f}"'
        z = size
    elif item.shape == 'cube':
        geom = f'type="box" size="{size:.4f} {size:.4f} {size:.4f}"'
        z = size
    elif item.shape == 'cylinder':
        geom = f'type="cylinder" size="{size:.4f} {1.2 * size:.4f}"'
        z = 1.2 * size
    elif item.shape == 'capsule':
        geom = f'type="capsule" size="{0.7 * size:.4f} {size:.4f}"'
        z = 1.7 * size
    else:
        raise ValueError(f'no primitive geom for shape {item.shape!r}')
    return (f'<geom name="{name}" {geom} rgba="{rgba}" {pose.format(z=z)} '
            f'contype="1" conaffinity="1"/>')


def scene_xml(scene: Scene) -> str:
    """MJCF for a scene."""
    assets, geoms = [], []
    for index, item in enumerate(scene.objects):
        if item.shape == 'pyramid':
            s = item.size
            assets.append(
                f'<texture name="pyramid{index}" type="2d" builtin="checker" width="64" '
                f'height="64" rgb1="{_numbers(item.rgb)}" '
                f'rgb2="{_numbers(0.6 * c for c in item.rgb)}"/>'
                f'<material name="pyramid{index}" texture="pyramid{index}" texrepeat="2 2"/>'
                f'<mesh name="pyramid{index}" scale="{s:.4f} {s:.4f} {2 * s:.4f}" '
                'vertex="-1 -1 0  1 -1 0  1 1 0  -1 1 0  0 0 1"/>')
            geoms.append(
                f'<geom name="object{index}" type="mesh" mesh="pyramid{index}" '
                f'material="pyramid{index}" pos="{item.x:.4f} {item.y:.4f} 0" '
                f'euler="0 0 {item.yaw:.4f}" contype="1" conaffinity="1"/>')
        else:
            geoms.append(_object_xml(index, item))
    for index, item in enumerate(scene.obstacles):
        # MJCF angles are degrees (the objects' yaw above is written as if radians: they
        # turn by a few degrees only; kept, so that every seed's scene stays as it was).
        geoms.append(
            f'<geom name="obstacle{index}" type="box" size="{item.half_length:.4f} '
            f'{item.half_width:.4f} {item.height / 2:.4f}" pos="{item.x:.4f} {item.y:.4f} '
            f'{item.height / 2:.4f}" euler="0 0 {math.degrees(item.yaw):.3f}" '
            f'rgba="{_rgba(item.rgb)}" '
            'contype="1" conaffinity="1"/>')
    half, wall_z = scene.arena_half, f'{scene.wall_height / 2:g}'
    walls = ''.join(
        f'<geom name="wall{i}" type="box" size="{sx} {sy} {wall_z}" pos="{px} {py} {wall_z}" '
        f'rgba="0.6 0.6 0.65 1" contype="1" conaffinity="1"/>'
        for i, (sx, sy, px, py) in enumerate((
            (half, 0.05, 0, half + 0.05), (half, 0.05, 0, -half - 0.05),
            (0.05, half, half + 0.05, 0), (0.05, half, -half - 0.05, 0))))
    tilt = math.radians(CAMERA_TILT_DEG)
    light = _numbers(scene.light_direction)
    rgb1, rgb2 = (_numbers(colour) for colour in scene.floor_rgb)
    return f"""<mujoco model="vla_arena">
  <!-- implicitfast: the velocity actuators are stiff for the base's small yaw inertia -->
  <option timestep="{PHYSICS_DT}" gravity="0 0 -9.81" integrator="implicitfast"/>
  <visual><global offwidth="640" offheight="480"/><quality shadowsize="0"/></visual>
  <asset>
    <texture type="skybox" builtin="gradient" rgb1="0.75 0.8 0.9" rgb2="0.35 0.4 0.5"
             width="64" height="64"/>
    <texture name="floor" type="2d" builtin="checker" width="256" height="256"
             rgb1="{rgb1}" rgb2="{rgb2}"/>
    <material name="floor" texture="floor" texrepeat="{scene.floor_squares} \
{scene.floor_squares}"/>
    {''.join(assets)}
  </asset>
  <worldbody>
    <light directional="true" dir="{light}" diffuse="{scene.light_diffuse:.3f} \
{scene.light_diffuse:.3f} {scene.light_diffuse:.3f}" castshadow="false"/>
    <light directional="true" dir="0 0 -1" diffuse="0.3 0.3 0.3" castshadow="false"/>
    <geom name="floor" type="plane" size="{half + 0.1} {half + 0.1} 0.1" material="floor"
          contype="0" conaffinity="0"/>
    {walls}
    {''.join(geoms)}
    <body name="robot" pos="0 0 {BASE_HEIGHT}">
      <joint name="x" type="slide" axis="1 0 0" damping="0"/>
      <joint name="y" type="slide" axis="0 1 0" damping="0"/>
      <joint name="yaw" type="hinge" axis="0 0 1" ref="0" damping="0"/>
      <geom name="robot" type="cylinder" size="{ROBOT_RADIUS} 0.05" mass="8"
            rgba="0.2 0.2 0.2 1" contype="2" conaffinity="1"/>
      <geom name="robot_nose" type="box" size="0.04 0.06 0.02" pos="{ROBOT_RADIUS} 0 0.04"
            rgba="0.9 0.9 0.2 1" contype="0" conaffinity="0" mass="0.01"/>
      <camera name="front" pos="{CAMERA_X} 0 {CAMERA_Z}" fovy="{CAMERA_FOVY_DEG}"
              xyaxes="0 -1 0 {math.sin(tilt):.4f} 0 {math.cos(tilt):.4f}"/>
    </body>
  </worldbody>
  <actuator>
    <velocity name="vx" joint="x" kv="400" ctrllimited="false"/>
    <velocity name="vy" joint="y" kv="400" ctrllimited="false"/>
    <velocity name="wz" joint="yaw" kv="60" ctrllimited="false"/>
  </actuator>
</mujoco>"""


def horizontal_fov_deg(width: int, height: int) -> float:
    half = math.atan(math.tan(math.radians(CAMERA_FOVY_DEG) / 2) * width / height)
    return math.degrees(2 * half)


def simulated_robot(width: int, height: int) -> dict:
    """The action_policy's values for the simulated robot (sim.launch.py passes them too):
    its camera's field of view and mount, its footprint (2 cm of margin), and its laser scan
    required for motion.
    """
    return {'camera_hfov_deg': round(horizontal_fov_deg(width, height), 2),
            'camera_vfov_deg': CAMERA_FOVY_DEG, 'camera_mount': CAMERA_MOUNT,
            'footprint_radius': ROBOT_RADIUS + 0.02, 'require_scan': 'true'}


def simulated_segmenter() -> dict:
    """The scene_segmenter's values for the simulator (sim.launch.py passes them too): what
    a target could be confused with there is every colour x shape its scenes draw.
    """
    return {'verification_contrasts': list(object_names())}


@dataclass(frozen=True)
class ScanSettings:
    """The simulated laser scanner (sim_bridge's scan_* parameters)."""

    rate_hz: float = 10.0
    beams: int = 360
    fov_deg: float = 360.0
    range_min: float = 0.05
    range_max: float = 8.0
    noise_m: float = 0.01

    def ray_cast(self) -> dict:
        return {'beams': self.beams, 'fov_deg': self.fov_deg, 'range_max': self.range_max,
                'noise_m': self.noise_m}

    def message(self, ranges, laser_pose=(0.0, 0.0, 0.0)):
        """The scan as core.collision_monitor reads it (and as sim_bridge publishes it)."""
        from vla_ros.core.collision_monitor import Scan

        angles = scan_angles(self.beams, self.fov_deg)
        increment = float(angles[1] - angles[0]) if self.beams > 1 else 0.0
        return Scan(ranges=ranges, angle_min=float(angles[0]), angle_increment=increment,
                    range_min=self.range_min, range_max=self.range_max,
                    laser_x=laser_pose[0], laser_y=laser_pose[1], laser_yaw=laser_pose[2])


class SimWorld:
    """Physics, camera rendering and ground truth for one scene."""

    def __init__(self, scene: Scene, width: int = 160, height: int = 120):
        self.scene = scene
        self.model = mujoco.MjModel.from_xml_string(scene_xml(scene))
        self.data = mujoco.MjData(self.model)
        self.data.qpos[:3] = (scene.robot_x, scene.robot_y, scene.robot_yaw)
        mujoco.mj_forward(self.model, self.data)
        self.width, self.height = width, height
        self._renderers = None  # made by the first thread that renders (see _renderers_here)
        self._render_thread = None
        self.robot_geom = self.model.geom('robot').id
        self.object_geoms = [self.model.geom(f'object{i}').id
                             for i in range(len(scene.objects))]
        self.obstacle_geoms = [self.model.geom(f'obstacle{i}').id
                               for i in range(len(scene.obstacles))]
        self._solid = np.array([self.model.geom(f'wall{i}').id for i in range(4)]
                               + self.object_geoms + self.obstacle_geoms)
        self.robot_body = self.model.body('robot').id
        self.time = 0.0
        self.collided_with = None  # name of the first thing the robot touched

    @property
    def vertical_fov_deg(self) -> float:
        return CAMERA_FOVY_DEG

    @property
    def horizontal_fov_deg(self) -> float:
        return horizontal_fov_deg(self.width, self.height)

    def place_robot(self, x: float, y: float, yaw: float) -> None:
        """Teleport the base (at rest), e.g. to render another view of the same scene."""
        self.data.qpos[:3] = (x, y, yaw)
        self.data.qvel[:3] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def pose(self) -> Pose2D:
        x, y, yaw = self.data.qpos[:3]
        return Pose2D(float(x), float(y), float(yaw))

    def velocity(self):
        """(v forward, w) in the robot frame."""
        vx, vy, wz = self.data.qvel[:3]
        yaw = self.data.qpos[2]
        return float(vx * math.cos(yaw) + vy * math.sin(yaw)), float(wz)

    def step(self, linear: float, angular: float, duration: float) -> None:
        """Drive with (v, w) for `duration` seconds of simulated time."""
        for _ in range(max(1, round(duration / PHYSICS_DT))):
            yaw = self.data.qpos[2]
            # Body-frame command, re-projected every step so the base tracks (v, w).
            self.data.ctrl[:] = (linear * math.cos(yaw), linear * math.sin(yaw), angular)
            mujoco.mj_step(self.model, self.data)
            self._check_contacts()
        self.time = float(self.data.time)

    def _check_contacts(self):
        if self.collided_with is not None:
            return
        pairs = self.data.contact.geom[:self.data.ncon]  # (ncon, 2) geom ids, as arrays
        touching = pairs[(pairs == self.robot_geom).any(axis=1)]
        others = touching[touching != self.robot_geom]
        solid = others[np.isin(others, self._solid)]
        if solid.size:
            self.collided_with = self.model.geom(int(solid[0])).name

    def scan(self, beams: int = 360, fov_deg: float = 360.0, range_max: float = 8.0,
             noise_m: float = 0.0, rng=None) -> np.ndarray:
        """A planar laser scan from the base's centre, LASER_HEIGHT above the floor: ranges
        (m) of `beams` beams counter-clockwise from -fov/2 (REP 117: inf where nothing is
        within range_max), with Gaussian noise of `noise_m`.
        """
        pose = self.pose()
        angles = scan_angles(beams, fov_deg) + pose.yaw
        directions = np.column_stack((np.cos(angles), np.sin(angles), np.zeros(beams)))
        origin = np.array([pose.x, pose.y, LASER_HEIGHT])
        geoms = np.zeros(beams, np.int32)
        ranges = np.zeros(beams, np.float64)
        mujoco.mj_multiRay(self.model, self.data, origin, directions.ravel(), None, True,
                           self.robot_body, geoms, ranges, None, beams, range_max)
        if noise_m > 0.0:
            rng = rng if rng is not None else np.random.default_rng()
            ranges = ranges + rng.normal(0.0, noise_m, beams)
        return np.where((geoms >= 0) & (ranges <= range_max), ranges, np.inf)

    def _renderers_here(self):
        """(rgb, segmentation) renderers of this thread: an EGL context is current in one
        thread only, so they are created where rendering happens and used nowhere else.
        """
        thread = threading.get_ident()
        if self._renderers is None:
            rgb = mujoco.Renderer(self.model, self.height, self.width)
            segmentation = mujoco.Renderer(self.model, self.height, self.width)
            segmentation.enable_segmentation_rendering()
            self._renderers, self._render_thread = (rgb, segmentation), thread
        elif thread != self._render_thread:
            raise RuntimeError('SimWorld renders in one thread only (its GL context is bound '
                               'to the thread that rendered first)')
        return self._renderers

    def render(self) -> np.ndarray:
        """The onboard camera's RGB image (HxWx3 uint8)."""
        renderer = self._renderers_here()[0]
        renderer.update_scene(self.data, camera='front')
        return renderer.render().copy()

    def object_mask(self, index: int) -> np.ndarray:
        """Pixels where object `index` is visible from the camera (ground truth)."""
        renderer = self._renderers_here()[1]
        renderer.update_scene(self.data, camera='front')
        ids = renderer.render()
        is_geom = ids[..., 1] == GEOM_TYPE
        return is_geom & (ids[..., 0] == self.object_geoms[index])

    def label_image(self) -> np.ndarray:
        """HxW uint8: 0 where no object is seen, i + 1 where object i is (ground truth)."""
        renderer = self._renderers_here()[1]
        renderer.update_scene(self.data, camera='front')
        ids = renderer.render()
        labels = np.zeros(ids.shape[:2], np.uint8)
        is_geom = ids[..., 1] == GEOM_TYPE
        for index, geom in enumerate(self.object_geoms):
            labels[is_geom & (ids[..., 0] == geom)] = index + 1
        return labels

    def distance_to(self, index: int) -> float:
        """The gap between the robot's body and the object's surface (m, exact geometry)."""
        mujoco.mj_forward(self.model, self.data)
        return float(mujoco.mj_geomDistance(self.model, self.data, self.robot_geom,
                                            self.object_geoms[index], 10.0, None))

    def close(self):
        """Free the renderers; from another thread than the rendering one, EGL cannot, so
        they are kept until the process ends (this happens once, when a node shuts down).
        """
        if self._renderers is None:
            return
        if threading.get_ident() == self._render_thread:
            for renderer in self._renderers:
                renderer.close()
        else:
            _RENDERERS_OF_OTHER_THREADS.append(self._renderers)
        self._renderers = None


# As a plain int: numpy compares an array with MuJoCo's enum object element by element in
# Python, 40 times slower than with the number.
GEOM_TYPE = int(mujoco.mjtObj.mjOBJ_GEOM)


def scan_angles(beams: int, fov_deg: float) -> np.ndarray:
    """Beam angles in the scanner's frame: from -fov/2, evenly, counter-clockwise (a full
    circle does not repeat its first beam).
    """
    fov = math.radians(fov_deg)
    step = fov / beams if fov_deg >= 360.0 else fov / max(beams - 1, 1)
    return -fov / 2 + step * np.arange(beams)


GL_PACKAGES = 'libegl1 libegl-mesa0 libgl1-mesa-dri libgles2'


def check_rendering() -> None:
    """Render one pixel headless, or raise with the Debian packages to install."""
    model = mujoco.MjModel.from_xml_string('<mujoco><worldbody/></mujoco>')
    try:
        renderer = mujoco.Renderer(model, 1, 1)
        renderer.render()
        renderer.close()
    except Exception as error:  # noqa: BLE001 - any GL failure means the same advice
        raise RuntimeError(
            f'MuJoCo cannot render headless with MUJOCO_GL={os.environ.get("MUJOCO_GL")} '
            f'({error}); install the GL libraries: apt-get install -y {GL_PACKAGES}') from None


if __name__ == '__main__':
    check_rendering()
    print(f'MuJoCo {mujoco.__version__} renders headless with MUJOCO_GL={os.environ["MUJOCO_GL"]}')
