"""scene_segmenter with a slow segmentation: targets at the camera's rate, tracked between
segmentations, each saying how old its segmentation is; a frozen camera gets no fresh ones.
"""

import time

from geometry_msgs.msg import PointStamped, Vector3Stamped
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, TimeReference
from test_perception_nodes import make_node, segmenter_with_command  # noqa: I100

from vla_ros.core.images import to_image_msg
from vla_ros.core.models import ModelCache
from vla_ros.fixtures.ros_graph import wait_until
from vla_ros.nodes.scene_segmenter import SceneSegmenter, stamp_ns

HEIGHT, WIDTH = 96, 128
TEXTURE = np.random.default_rng(3).integers(30, 230, (HEIGHT // 8 + 1, 2 * WIDTH // 8, 3),
                                            dtype=np.uint8)


@pytest.fixture(scope='module')
def models():
    return ModelCache()


def camera_frame(index: int, stamp_ns_: int):
    """A textured view panning 2 px a frame (a turning robot), stamped `stamp_ns_`."""
    view = np.kron(TEXTURE, np.ones((8, 8, 1), np.uint8))[:HEIGHT, 2 * index:2 * index + WIDTH]
    msg = to_image_msg(np.ascontiguousarray(view))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns_, 1_000_000_000)
    msg.header.frame_id = 'camera'
    return msg


def slow_segmenter(ros, tiny_clipseg_dir, models, **parameters):
    # Threshold 0: the tiny random model's region is the whole frame, which has corners.
    return segmenter_with_command(ros, tiny_clipseg_dir, models, max_rate_hz=0.5,
                                  mask_threshold=0.0, **parameters)


def outputs(ros):
    return (ros.collect(PointStamped, 'target'), ros.collect(Vector3Stamped, 'target_extent'),
            ros.collect(TimeReference, 'target_source'), ros.collect(Image, 'segmentation/mask'))


def stream(ros, count, start_index=0, rate_hz=10.0, first_ns=5_000_000_000):
    images = ros.publisher(Image, 'image', qos_profile_sensor_data)
    sent = []
    for index in range(start_index, start_index + count):
        stamp = first_ns + index * 100_000_000
        images.publish(camera_frame(index, stamp))
        sent.append(stamp)
        time.sleep(1.0 / rate_hz)
    return sent


def test_targets_come_at_the_camera_rate_between_slow_segmentations(ros, tiny_clipseg_dir,
                                                                    models):
    slow_segmenter(ros, tiny_clipseg_dir, models)
    targets, extents, sources, masks = outputs(ros)
    sent = stream(ros, 40)  # 4 s at 10 Hz; segmentations at most every 2 s
    assert wait_until(lambda: len(sources) >= len(targets) and targets, 5)
    assert len(masks) <= 3  # the model ran at its rate ...
    assert len(targets) >= max(15, 5 * len(masks))  # ... the targets came with the frames
    stamps = [stamp_ns(target.header) for target in targets]
    assert set(stamps) <= set(sent) and stamps == sorted(set(stamps))  # one per frame
    by_stamp = {stamp_ns(source.header): source for source in sources}
    assert set(stamps) <= set(by_stamp)
    assert set(stamps) <= {stamp_ns(extent.header) for extent in extents}
    segmented = [stamp_ns_of_time(by_stamp[stamp].time_ref) for stamp in stamps]
    assert all(frame in sent and frame <= stamp for frame, stamp in zip(segmented, stamps))
    kinds = [by_stamp[stamp].source for stamp in stamps]
    assert 'tracked' in kinds and set(kinds) <= {'tracked', 'segmented'}
    # A tracked target's segmentation is one of the frames the model ran on, and it gets
    # older until the next one.
    assert len(set(segmented)) <= len(masks)


def stamp_ns_of_time(time_msg) -> int:
    return time_msg.sec * 1_000_000_000 + time_msg.nanosec


def test_a_frozen_camera_repeating_its_frame_gets_no_fresh_targets(ros, tiny_clipseg_dir,
                                                                    models):
    slow_segmenter(ros, tiny_clipseg_dir, models)
    targets, _, _, _ = outputs(ros)
    sent = stream(ros, 30)
    assert wait_until(lambda: targets, 5)
    images = ros.publisher(Image, 'image', qos_profile_sensor_data)
    frozen = camera_frame(29, sent[-1])  # the driver repeats its last frame and stamp
    time.sleep(0.5)
    for _ in range(15):  # 1.5 s
        images.publish(frozen)
        time.sleep(0.1)
    before = len(targets)
    for _ in range(20):  # 2 s more
        images.publish(frozen)
        time.sleep(0.1)
    assert len(targets) == before  # dropped once repeated for over a second


def test_with_tracking_off_a_target_comes_per_segmentation(ros, tiny_clipseg_dir, models):
    slow_segmenter(ros, tiny_clipseg_dir, models, track_targets=False)
    targets, _, sources, masks = outputs(ros)
    stream(ros, 30)
    assert wait_until(lambda: targets and len(sources) >= len(targets), 5)
    assert len(targets) == len(masks) <= 3
    assert all(source.source == 'segmented' and source.time_ref == source.header.stamp
               for source in sources)


def test_the_tracker_thread_stops_with_the_node(ros, tiny_clipseg_dir, models):
    node = make_node(ros, SceneSegmenter, tiny_clipseg_dir, models, verify_targets=False,
                     fovea=False)
    worker = node.tracking_worker
    assert worker is not None and worker.running
    node.trigger_deactivate()
    assert node.tracking_worker is None and not worker.running


def test_a_camera_whose_stamps_go_back_is_followed_again(ros, tiny_clipseg_dir, models,
                                                          capfd):
    """A restarted driver or a bag played again: its frames are not stuck behind the old
    stamps (once, nothing was published until the stamps passed the old newest).
    """
    slow_segmenter(ros, tiny_clipseg_dir, models)
    targets, _, sources, masks = outputs(ros)
    stream(ros, 25, first_ns=50_000_000_000)
    assert wait_until(lambda: targets, 5)
    before, segmented = len(targets), len(masks)
    stream(ros, 40, first_ns=1_000_000_000)  # from 1 s again
    assert wait_until(lambda: len(masks) > segmented, 5)
    assert len(targets) >= before + 15  # followed at the camera's rate, not stuck
    stamps = [stamp_ns(target.header) for target in targets]
    assert stamps == sorted(set(stamps))  # stamped on arrival: still one per frame, in order
    assert 'stamped on arrival' in capfd.readouterr().err
