"""Training data for the embedded models: onboard-camera views of simulator scenes.

Each sample is a rendered RGB view, a label image (0 = nothing, i + 1 = object i, from the
segmentation buffer, so masks are exact) and a table of the objects with their pixel counts.
Captions and prompts are made from that table, so they always describe what is in view.

Compositional generalisation is measured on HELD_OUT colour x shape combinations: they never
appear in the 'train' split (neither as target nor as distractor); the 'heldout' split puts
one of them in front of the camera in every sample.
"""

from dataclasses import dataclass, replace
import math

import numpy as np

from vla_ros.sim.scene import COLOURS, generate_scene, ROBOT_RADIUS, SceneObject, SHAPES

# One combination per shape and per colour at most, so every colour and every shape is still
# seen in training, only not together.
HELD_OUT = frozenset({('red', 'capsule'), ('blue', 'pyramid'), ('green', 'cube'),
                      ('yellow', 'cylinder'), ('purple', 'ball')})
SPLITS = ('train', 'heldout')
MIN_VISIBLE_FRACTION = 0.01  # smaller than this in view, a shape is not recognisable


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # HxWx3 uint8
    labels: np.ndarray  # HxW uint8, 0 = nothing, i + 1 = objects[i]
    objects: tuple  # SceneObject
    pixels: tuple  # visible pixels of each object
    focus: int  # the object the camera was pointed at, -1 for a view from anywhere

    def visible(self):
        """Indices of objects large enough in view to be named."""
        size = self.labels.size
        return [i for i, count in enumerate(self.pixels) if count / size >= MIN_VISIBLE_FRACTION]

    def captions(self, index: int):
        """Ways to name object `index`, as a person or a command would."""
        item = self.objects[index]
        return [f'a {item.colour} {item.shape}', f'the {item.colour} {item.shape}',
                f'go to the {item.colour} {item.shape}', f'{item.colour} {item.shape}']

    def prompts(self, index: int):
        """Segmentation prompts that pick object `index` out (colour or shape alone only when
        no other visible object shares it).
        """
        item = self.objects[index]
        others = [self.objects[i] for i in self.visible() if i != index]
        prompts = [f'{item.colour} {item.shape}', f'the {item.colour} {item.shape}']
        if all(other.colour != item.colour for other in others):
            prompts.append(item.colour)
        if all(other.shape != item.shape for other in others):
            prompts.append(item.shape)
        return prompts


def _allowed(colour, shape, split):
    held = (colour, shape) in HELD_OUT
    return not held if split == 'train' else True


def scene_for_split(seed: int, split: str):
    """A scene whose objects respect the split; in 'heldout' the focus is a held-out combo."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    scene = generate_scene(int(rng.integers(2**31)), min_objects=1, max_objects=4)
    colours, shapes = list(COLOURS), list(SHAPES)
    objects = []
    for item in scene.objects:
        colour, shape = item.colour, item.shape
        while not _allowed(colour, shape, split) or (split == 'heldout'
                                                     and (colour, shape) in HELD_OUT):
            colour, shape = str(rng.choice(colours)), str(rng.choice(shapes))
        objects.append(replace(item, colour=colour, shape=shape))
    focus = int(rng.integers(len(objects)))
    if split == 'heldout':
        colour, shape = sorted(HELD_OUT)[int(rng.integers(len(HELD_OUT)))]
        objects[focus] = replace(objects[focus], colour=colour, shape=shape)
    return replace(scene, objects=tuple(objects), target_index=focus), rng


def camera_pose_towards(item: SceneObject, objects, rng, arena_half: float):
    """A robot pose 0.5-2.2 m from `item`, facing it within +-0.35 rad, inside the arena and
    clear of every object.
    """
    for _ in range(100):
        distance = rng.uniform(0.5, 2.2) + item.size
        bearing = rng.uniform(-math.pi, math.pi)
        x, y = item.x + distance * math.cos(bearing), item.y + distance * math.sin(bearing)
        clear = all(math.hypot(x - other.x, y - other.y) > other.size + 0.3
                    for other in objects)
        if clear and max(abs(x), abs(y)) < arena_half - 0.3:
            yaw = math.atan2(item.y - y, item.x - x) + rng.uniform(-0.35, 0.35)
            return float(x), float(y), float(yaw)
    return 0.0, 0.0, 0.0


def camera_pose_anywhere(objects, rng, arena_half: float):
    """A pose the robot may be in while searching or driving: anywhere clear of objects
    and walls (up to touching distance), facing any way: walls close up, objects seen from
    near or cut off at the image's edge.
    """
    margin = ROBOT_RADIUS + 0.05
    for _ in range(100):
        x, y = rng.uniform(-arena_half + margin, arena_half - margin, size=2)
        if all(math.hypot(x - other.x, y - other.y) > other.size + margin for other in objects):
            return float(x), float(y), float(rng.uniform(-math.pi, math.pi))
    return 0.0, 0.0, float(rng.uniform(-math.pi, math.pi))


def render_views(scene_seed: int, split: str = 'train', views: int = 8, width: int = 128,
                 height: int = 128, anywhere_fraction: float = 0.0):
    """`views` samples of one scene (compiled once), each pointed at a random object, or
    with probability `anywhere_fraction` from anywhere (`camera_pose_anywhere`).

    The same arguments always give the same pixels.
    """
    # Imported here so that training on stored views needs no renderer (MuJoCo, EGL).
    from vla_ros.sim.world import SimWorld

    scene, rng = scene_for_split(scene_seed, split)
    world = SimWorld(scene, width, height)
    samples = []
    try:
        for view in range(views):
            # In 'heldout' the held-out object is always the focus; else any object.
            focus = scene.target_index if split == 'heldout' or view == 0 else int(
                rng.integers(len(scene.objects)))
            # Drawn only when asked for, so that fraction 0 keeps earlier datasets' pixels.
            if anywhere_fraction > 0 and rng.random() < anywhere_fraction:
                focus = -1
                pose = camera_pose_anywhere(scene.objects, rng, scene.arena_half)
            else:
                pose = camera_pose_towards(scene.objects[focus], scene.objects, rng,
                                           scene.arena_half)
            world.place_robot(*pose)
            labels = world.label_image()
            pixels = tuple(int((labels == index + 1).sum())
                           for index in range(len(scene.objects)))
            samples.append(Sample(image=world.render(), labels=labels, objects=scene.objects,
                                  pixels=pixels, focus=focus))
    finally:
        world.close()
    return samples
