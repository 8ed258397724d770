"""The simulated world: MuJoCo arena, seeded scenes, closed-loop episodes, dataset renders."""

import os

# The one place MUJOCO_GL is set: headless rendering (Mesa EGL), before mujoco is imported,
# which any module of this package does after this line has run.
os.environ.setdefault('MUJOCO_GL', 'egl')
