"""ament_python package vla_ros: colcon installs it on a robot, pip -e in the dev venv."""

import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'vla_ros'
HERE = Path(__file__).resolve().parent


def share_files(folder):
    """(install dir, [files]) pairs for every file below `folder`, keeping its tree."""
    pairs = []
    for directory, subdirectories, names in os.walk(HERE / folder):
        subdirectories[:] = sorted(name for name in subdirectories if name != '__pycache__')
        files = sorted(
            str(Path(directory, name).relative_to(HERE))
            for name in names if not name.startswith('.')
        )
        if files:
            relative = Path(directory).relative_to(HERE)
            pairs.append((str(Path('share', PACKAGE, relative)), files))
    return sorted(pairs)


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        *share_files('launch'),
        *share_files('config'),
        *share_files('models'),
    ],
    # Runtime dependencies come from package.xml (rosdep) on a robot and from
    # requirements.txt in the development venv; listing them here would make
    # colcon's setuptools try to fetch torch.
    install_requires=['setuptools'],
    # colcon runs `colcon test` with pytest only when a test extra names it (else unittest,
    # which finds none of the pytest suite).
    extras_require={'test': ['pytest']},
    zip_safe=False,
    maintainer='vla_ros maintainers',
    maintainer_email='maintainers@vla-ros.invalid',
    description='Vision-language-action nodes for ROS 2 (CLIP, CLIPSeg, safe cmd_vel policy).',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'vla-ros = vla_ros.commands.main:main',
            'camera_embedder = vla_ros.nodes.camera_embedder:main',
            'command_embedder = vla_ros.nodes.command_embedder:main',
            'scene_segmenter = vla_ros.nodes.scene_segmenter:main',
            'action_policy = vla_ros.nodes.action_policy:main',
            'sim_bridge = vla_ros.nodes.sim_bridge:main',
        ],
    },
)
