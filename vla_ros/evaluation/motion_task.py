"""`vla-ros eval --task motion`: measured motions ("go forward 1.5 meters", "turn right 90
degrees", "back up 30 cm", "turn around") in the simulator's scenes, through the deployed
command path (the text encoder, the intents, the grammar) and the odometry-ended motion.

An episode succeeds when the robot stops with `moved …` or `turned …`, within TOLERANCE of
what was asked (10 % of a distance, 10° of an angle) as the simulator measures it, having
touched nothing. Distances are drawn to fit the free way ahead (or behind) at the start, so
a failure is the motion's, not a wall's.
"""


import numpy as np

from vla_ros.core.footprint import travel_distance
from vla_ros.core.status import is_final

DISTANCE_TOLERANCE = 0.10  # of the asked distance
ANGLE_TOLERANCE_DEG = 10.0
FREE_MARGIN_M = 0.7  # kept free beyond an asked distance: the monitor slows within 0.5 m

# (template, kind, signed amount): {n} degrees, {d} metres or {cm} centimetres, drawn.
ANGLE_TEMPLATES = (('turn left {n} degrees', 1), ('turn right {n} degrees', -1),
                   ('rotate {n} degrees clockwise', -1), ('turn {n}° to the left', 1),
                   ('please turn right by {n} degrees', -1),
                   ('slowly turn left {n} degrees', 1), ('turn right {n} degrees quickly', -1))
FIXED_ANGLES = (('turn around', 0, 180.0), ('turn left a quarter turn', 1, 90.0),
                ('turn right half a turn', -1, 180.0), ('turn left a little', 1, None))
DISTANCE_TEMPLATES = (('go forward {d} meters', 1), ('drive forward {d} m', 1),
                      ('move forward {cm} cm', 1), ('back up {cm} cm', -1),
                      ('go backwards {d} meters', -1), ('slowly go forward {d} meters', 1),
                      ('go forward {d} meters at full speed', 1))
FIXED_DISTANCES = (('move forward a little', 1, None), ('back up a bit', -1, None))
ANGLES_DEG = (30, 45, 60, 90, 120, 135, 180, 270)
FORWARD_M = (0.5, 0.75, 1.0, 1.5, 2.0)
BACKWARD_M = (0.2, 0.3, 0.4, 0.5)


def motion_command(scene, settings) -> tuple:
    """(template, command, kind, signed amount) for `scene` (draw_motion), with the free way
    ahead and behind read from the simulated scan at the start, as the collision monitor
    would see it. `settings`: the evaluation's StackSettings.
    """
    from vla_ros.core import config
    from vla_ros.sim.world import SimWorld

    world = SimWorld(scene)
    try:
        ranges = world.scan(**settings.scan.ray_cast())
    finally:
        world.close()
    points = settings.scan.message(ranges, config.laser_pose(settings.policy)).points()
    control = settings.control
    return draw_motion(scene.seed, *free_travel(points, control.monitor.footprint),
                       control.motion.small_distance_m, control.motion.small_angle_deg)


def draw_motion(seed: int, free_ahead_m: float, free_behind_m: float, small_distance_m: float,
                small_angle_deg: float) -> tuple:
    """(template, command, kind, signed amount: m or degrees; 0 for "turn around", either
    way) for the episode of `seed`, whose robot can go `free_ahead_m` forwards and
    `free_behind_m` back.
    """
    rng = np.random.default_rng(seed + 104729)
    if rng.random() < 0.5:
        template, sign = DISTANCE_TEMPLATES[rng.integers(len(DISTANCE_TEMPLATES))]
        if rng.random() < 0.15:
            template, sign, _ = FIXED_DISTANCES[rng.integers(len(FIXED_DISTANCES))]
        room = (free_ahead_m if sign > 0 else free_behind_m) - FREE_MARGIN_M
        choices = [value for value in (FORWARD_M if sign > 0 else BACKWARD_M) if value <= room]
        if '{' not in template and small_distance_m <= room:
            return template, template, 'distance', sign * small_distance_m
        if choices and '{' in template:
            metres = float(rng.choice(choices))
            text = template.format(d=f'{metres:g}', cm=f'{round(metres * 100)}')
            return template, text, 'distance', sign * metres
    if rng.random() < 0.2:
        template, sign, degrees = FIXED_ANGLES[rng.integers(len(FIXED_ANGLES))]
        return (template, template, 'angle',
                sign * (small_angle_deg if degrees is None else degrees))
    template, sign = ANGLE_TEMPLATES[rng.integers(len(ANGLE_TEMPLATES))]
    degrees = int(rng.choice(ANGLES_DEG))
    return template, template.format(n=degrees), 'angle', float(sign * degrees)


def free_travel(points, footprint) -> tuple:
    """(m ahead, m behind) the footprint can drive straight from the scan's points."""
    return travel_distance(points, footprint, True), travel_distance(points, footprint, False)


def motion_outcome(status: str, collided_with: str | None, timed_out: bool, asked: tuple,
                   moved_m: float, turned_deg: float) -> tuple:
    """(outcome, success, error: m or degrees off what was asked) of a motion episode."""
    kind, amount = asked
    error = motion_error(asked, moved_m, turned_deg)
    if collided_with:
        return 'collision', False, error
    if timed_out or not is_final(status):
        return 'timeout', False, error
    if not status.startswith(('moved ', 'turned ')):
        return 'not done', False, error
    tolerance = (DISTANCE_TOLERANCE * abs(amount) if kind == 'distance'
                 else ANGLE_TOLERANCE_DEG)
    if error > tolerance:
        return 'off', False, error
    return 'success', True, error


def motion_error(asked: tuple, moved_m: float, turned_deg: float) -> float:
    """How far (m, or degrees) what the robot did lies from what was asked."""
    kind, amount = asked
    made = moved_m if kind == 'distance' else turned_deg
    if kind == 'angle' and amount == 0.0:  # "turn around": either way
        return abs(abs(made) - 180.0)
    return abs(made - amount)
