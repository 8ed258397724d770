"""config/vla.yaml and the nodes agree: every key is a declared parameter and vice versa."""

from pathlib import Path

import pytest
from rclpy.parameter import Parameter
import yaml

from vla_ros.core.config import flatten
from vla_ros.nodes.scene_segmenter import SceneSegmenter
from vla_ros.nodes.stack import node_classes, ros_arguments, Stack

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'vla.yaml'
# Declared by rclpy itself, not by our nodes.
RCLPY_OWN = {'use_sim_time', 'start_type_description_service'}


@pytest.fixture(scope='module')
def stack(tiny_clip_dir, tiny_clipseg_dir):
    overrides = {name: [Parameter('model', value=str(tiny_clipseg_dir if name ==
                                                     'scene_segmenter' else tiny_clip_dir))]
                 for name in ('camera_embedder', 'command_embedder', 'scene_segmenter',
                              'action_policy')}
    started = Stack(ros_arguments(params_file=CONFIG), overrides, progress=lambda line: None)
    yield started
    started.close()


def test_yaml_has_a_section_per_node_and_shared_values():
    document = yaml.safe_load(CONFIG.read_text())
    names = {cls.NODE_NAME for cls in node_classes()}
    assert set(document) == {'/**'} | {f'/**/{name}' for name in names}
    assert set(document['/**']['ros__parameters']) == {'use_sim_time', 'device', 'dtype',
                                                        'autostart'}


def test_every_yaml_key_is_declared_and_every_declared_parameter_is_in_the_yaml(stack):
    document = yaml.safe_load(CONFIG.read_text())
    shared = set(flatten(document['/**']['ros__parameters']))
    for node in stack.nodes:
        declared = set(node._parameters)
        own = set(flatten(document[f'/**/{node.get_name()}']['ros__parameters']))
        in_yaml = own | shared
        unknown = in_yaml - declared
        assert not unknown, f'{node.get_name()}: YAML keys no node declares: {unknown}'
        missing = {name for name in declared - in_yaml
                   if name not in RCLPY_OWN and not name.startswith('qos_overrides.')}
        assert not missing, f'{node.get_name()}: declared but not in the YAML: {missing}'


def test_yaml_values_reach_the_nodes(stack):
    policy = next(node for node in stack.nodes if node.get_name() == 'action_policy')
    assert policy.get_namespace() == '/vla'
    assert policy.get_parameter('intent.turn_left.angular_rps').value == 0.5
    assert policy.get_parameter('intent.stop.phrases').value[6] == "don't move"
    camera = next(node for node in stack.nodes if node.get_name() == 'camera_embedder')
    reliability = camera.get_parameter(
        'qos_overrides./camera/image_raw.subscription.reliability').value
    assert reliability == 'best_effort'
    # The override beat the YAML's '' (which would have needed the embedded model).
    assert camera.get_parameter('model').value != ''


def test_every_parameter_answers_a_get_request_as_rqt_sends_it(stack):
    """rqt_reconfigure asks for all of a node's parameters at once; rclpy answers nothing at
    all when one of them is unset (the empty `labels` and `prompts` lists were).
    """
    from rclpy.node import Node
    from rclpy.parameter_client import AsyncParameterClient

    from vla_ros.fixtures.ros_graph import wait_until

    probe = stack.add(Node('reconfigure_probe', context=stack.context))
    stack.spin_in_background()
    for node in stack.nodes[:-1]:
        names = list(node.list_parameters([], 0).names)
        client = AsyncParameterClient(probe, node.get_fully_qualified_name())
        assert client.wait_for_services(timeout_sec=10)
        future = client.get_parameters(names)
        assert wait_until(future.done)
        assert len(future.result().values) == len(names), node.get_name()


def test_readme_lists_the_topics_the_stack_creates(stack):
    """README's `ros2 topic list` block is what the stack, as launched, really creates."""
    import re

    from vla_ros.fixtures.ros_graph import wait_until

    readme = (CONFIG.parents[1] / 'README.md').read_text()
    listed = set(re.search(r'```text\n(/camera/image_raw\n.*?)```', readme,
                           re.DOTALL).group(1).split())
    probe = stack.nodes[0]
    launched = [(node.get_name(), node.get_namespace()) for node in stack.nodes
                if node.get_name() in {'camera_embedder', 'command_embedder', 'scene_segmenter',
                                       'action_policy'} and node.get_namespace() == '/vla']

    def created():
        topics = set()
        for name, namespace in launched:
            for lookup in (probe.get_publisher_names_and_types_by_node,
                           probe.get_subscriber_names_and_types_by_node):
                topics |= {topic for topic, _ in lookup(name, namespace)}
        return topics - {'/parameter_events', '/rosout'}
    assert len(launched) == 4
    assert wait_until(lambda: created() >= listed, 10), listed - created()
    assert created() == listed


def test_a_read_only_empty_list_answers_too(ros, tiny_clipseg_dir):
    """verification_contrasts is read-only and empty when verify_targets is off."""
    from rclpy.parameter_client import AsyncParameterClient

    from vla_ros.fixtures.ros_graph import wait_until

    node = ros.add(SceneSegmenter(context=ros.context, parameter_overrides=[
        Parameter('model', value=str(tiny_clipseg_dir)),
        Parameter('verify_targets', value=False)]))
    assert node.get_parameter('verification_contrasts').value == []
    names = list(node.list_parameters([], 0).names)
    client = AsyncParameterClient(ros.probe, node.get_fully_qualified_name())
    assert client.wait_for_services(timeout_sec=10)
    future = client.get_parameters(names)
    assert wait_until(future.done) and len(future.result().values) == len(names)


def test_diagnostics_analyzers_group_every_status_of_the_stack(stack):
    """config/diagnostics.yaml (diagnostic_aggregator, started by vla.launch.py): each status
    the four nodes publish, as launched in /vla, falls to exactly one analyzer (GenericAnalyzer
    `contains`: a substring of the status name).
    """
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node

    from vla_ros.fixtures.ros_graph import wait_until

    document = yaml.safe_load((CONFIG.parent / 'diagnostics.yaml').read_text())
    (key, section), = document.items()
    assert key == '/**/diagnostics_aggregator'  # the launch file's node name, any namespace
    analyzers = {name: value for name, value in section['ros__parameters'].items()
                 if isinstance(value, dict)}
    assert all(value['type'] == 'diagnostic_aggregator/GenericAnalyzer'
               for value in analyzers.values())
    probe = stack.add(Node('diagnostics_probe', context=stack.context))
    names = set()
    probe.create_subscription(DiagnosticArray, '/diagnostics', lambda array: names.update(
        status.name for status in array.status), 10)
    stack.spin_in_background()
    assert wait_until(lambda: {name.split(':')[0] for name in names} >= {
        '/vla/camera_embedder', '/vla/command_embedder', '/vla/scene_segmenter',
        '/vla/action_policy'}, 10), names
    for name in names:
        matched = [analyzer for analyzer, value in analyzers.items()
                   if any(part in name for part in value['contains'])]
        assert len(matched) == 1, (name, matched)
