"""`vla-ros replay`: a rosbag2 written with rosbags from simulator frames, replayed through
the perception pipeline and the policy, in both storage formats and with compressed frames.
"""

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from vla_ros.commands.main import main
from vla_ros.core import paths
from vla_ros.sim.scene import generate_scene
from vla_ros.sim.world import SimWorld

TYPES = get_typestore(Stores.ROS2_KILTED)
FRAMES = 16


def message(msgtype, stamp_ns, rgb, compressed):
    header = TYPES.types['std_msgs/msg/Header'](
        stamp=TYPES.types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9,
                                                          nanosec=stamp_ns % 10**9),
        frame_id='camera')
    if compressed:
        ok, jpeg = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        return TYPES.types[msgtype](header=header, format='rgb8; jpeg compressed bgr8',
                                    data=jpeg.ravel())
    height, width = rgb.shape[:2]
    return TYPES.types[msgtype](header=header, height=height, width=width, encoding='rgb8',
                                is_bigendian=0, step=width * 3, data=rgb.ravel())


@pytest.fixture(scope='module')
def recording():
    """Frames of a simulator scene while the robot turns, and where the target truly was."""
    scene = generate_scene(3)
    world = SimWorld(scene, 160, 120)
    try:
        frames, truth = [], []
        for _ in range(FRAMES):
            frames.append(world.render())
            mask = world.object_mask(scene.target_index)
            truth.append(None if mask.mean() < 0.002 else
                         2 * np.nonzero(mask)[1].mean() / mask.shape[1] - 1)
            world.step(0.0, 0.6, 0.1)
    finally:
        world.close()
    return scene, frames, truth


def write_bag(folder: Path, frames, storage, topics=('/camera/image_raw',), compressed=False):
    msgtype = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
    with Writer(folder, version=9, storage_plugin=storage) as writer:
        connections = [writer.add_connection(topic, msgtype, typestore=TYPES)
                       for topic in topics]
        for index, rgb in enumerate(frames):
            stamp = 1_000_000_000 + index * 100_000_000
            for connection in connections:
                writer.write(connection, stamp, TYPES.serialize_cdr(
                    message(msgtype, stamp, rgb, compressed), msgtype))
    return folder


def read_track(folder: Path):
    with open(folder / 'track.csv') as handle:
        return list(csv.DictReader(handle))


def embedded_models():
    if not (paths.default_model_dir('clipseg') / 'config.json').is_file():
        pytest.skip('no embedded models')


@pytest.mark.parametrize(('storage', 'compressed'), [
    (StoragePlugin.MCAP, False), (StoragePlugin.SQLITE3, False), (StoragePlugin.MCAP, True)])
def test_a_recorded_bag_is_replayed_through_the_pipeline(tmp_path, recording, storage,
                                                         compressed):
    embedded_models()
    scene, frames, truth = recording
    bag = write_bag(tmp_path / 'bag', frames, storage, compressed=compressed)
    output = tmp_path / 'replay'
    assert main(['replay', str(bag), '--command', f'please drive over to the {scene.target.name}',
                 '--output', str(output), '--device', 'cpu']) == 0
    rows = read_track(output)
    assert len(rows) == FRAMES
    assert (output / 'replay.gif').stat().st_size > 0 and (output / 'track.png').is_file()
    # Where the simulator saw the target, the pipeline found it on the same side.
    in_view = [(row, x) for row, x in zip(rows, truth) if x is not None]
    assert len(in_view) >= 4
    found = [row for row, x in in_view
             if row['visible'] == 'True' and abs(float(row['x']) - x) < 0.2]
    assert len(found) >= 0.75 * len(in_view), (rows, truth)
    assert all(row['status'] != 'not understood' for row in rows)


def test_nonsense_in_a_replay_never_moves(tmp_path, recording):
    embedded_models()
    bag = write_bag(tmp_path / 'bag', recording[1][:4], StoragePlugin.MCAP)
    assert main(['replay', str(bag), '--command', 'asdfghjkl', '--output',
                 str(tmp_path / 'out'), '--device', 'cpu']) == 0
    rows = read_track(tmp_path / 'out')
    assert {row['status'] for row in rows} == {'not understood: asdfghjkl'}
    assert all(float(row['linear_mps']) == float(row['angular_rps']) == 0.0 for row in rows)


def test_an_unclear_topic_is_a_clear_error(tmp_path, recording, capsys):
    bag = write_bag(tmp_path / 'bag', recording[1][:2], StoragePlugin.MCAP,
                    topics=('/left/image', '/right/image'))
    assert main(['replay', str(bag), '--command', 'go to the red ball', '--output',
                 str(tmp_path / 'out')]) == 2
    assert 'several image topics (/left/image, /right/image)' in capsys.readouterr().err
    assert main(['replay', str(bag), '--command', 'go to the red ball', '--image-topic',
                 '/front', '--output', str(tmp_path / 'out')]) == 2
    assert "no image topic '/front'" in capsys.readouterr().err
    assert main(['replay', str(tmp_path / 'missing'), '--command', 'stop']) == 2
