"""Shared test setup: an isolated ROS graph, no hub access, tiny models built once."""

import os

# Before anything imports rclpy: keep discovery on this machine and give this test run its
# own domain, so parallel runs on one machine never see each other's topics.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(os.getpid() % 100 + 1))
# pytest-xdist's workers inherit the controller's domain: each takes the next one, or the
# same topic names of tests running side by side would meet.
_WORKER = os.environ.get('PYTEST_XDIST_WORKER', '')
_WORKER = _WORKER if _WORKER.startswith('gw') else ''
if _WORKER:
    os.environ['ROS_DOMAIN_ID'] = str(
        (int(os.environ['ROS_DOMAIN_ID']) + int(_WORKER[2:]) + 1) % 101 + 1)
    # Workers already share the cores: one math thread each (and in the processes they
    # start), or idle threads of torch and OpenBLAS spin-wait on cores another worker needs.
    for _THREADS in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(_THREADS, '1')
os.environ['HF_HUB_OFFLINE'] = '1'  # tests never wait on a network that is not there

import pytest  # noqa: E402

from vla_ros.fixtures import tiny_models  # noqa: E402


@pytest.fixture(scope='session', autouse=True)
def openvino_cache(tmp_path_factory):
    """Converted OpenVINO models go to this run's own folder (and child processes' too), not
    to the user's cache: every run converts afresh, so a conversion bug cannot hide in a stale
    cache.
    """
    if _WORKER:  # one cache for the run's workers: each model is converted once, not per worker
        folder = tmp_path_factory.getbasetemp().parent / 'cache'
        folder.mkdir(exist_ok=True)
    else:
        folder = tmp_path_factory.mktemp('cache')
    previous = os.environ.get('VLA_ROS_CACHE_DIR')
    os.environ['VLA_ROS_CACHE_DIR'] = str(folder)
    yield folder / 'openvino'
    if previous is None:
        os.environ.pop('VLA_ROS_CACHE_DIR', None)
    else:
        os.environ['VLA_ROS_CACHE_DIR'] = previous


@pytest.fixture(scope='session')
def tiny_clip_dir(tmp_path_factory):
    return tiny_models.build_tiny_clip(tmp_path_factory.mktemp('models') / 'tiny-clip')


@pytest.fixture(scope='session')
def tiny_clipseg_dir(tmp_path_factory):
    return tiny_models.build_tiny_clipseg(tmp_path_factory.mktemp('models') / 'tiny-clipseg')


@pytest.fixture
def ros():
    """A private ROS graph for one test (see vla_ros.fixtures.ros_graph)."""
    from vla_ros.fixtures.ros_graph import RosGraph

    graph = RosGraph()
    yield graph
    graph.close()
