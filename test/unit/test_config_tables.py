"""The parameter tables (core.config): config/vla.yaml checked against them, value by value."""

from pathlib import Path

import pytest
import yaml

from vla_ros.core import config
from vla_ros.core.control import ControlSettings
from vla_ros.core.perception import PerceptionSettings
from vla_ros.core.policy import DEFAULT_INTENTS, ServoConfig
from vla_ros.core.safety import SafetyLimits
from vla_ros.evaluation.lockstep import StackSettings
from vla_ros.sim.scene import object_names

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'vla.yaml'


@pytest.mark.parametrize('node_name', sorted(config.NODE_TABLES))
def test_every_yaml_value_passes_its_nodes_table(node_name):
    values = config.read_params_file(CONFIG, node_name)
    assert set(values) == set(config.node_table(node_name, values))


def test_the_yaml_names_every_parameter_of_every_table():
    document = yaml.safe_load(CONFIG.read_text())
    shared = set(config.flatten(document['/**']['ros__parameters']))
    for node_name in config.NODE_TABLES:
        given = set(config.flatten(document[f'/**/{node_name}']['ros__parameters'])) | shared
        values = config.read_params_file(CONFIG, node_name)
        missing = set(config.node_table(node_name, values)) - given
        assert not missing, f'{node_name}: not in the YAML: {missing}'


def test_the_yaml_configures_what_the_core_defaults_are():
    policy = config.read_params_file(CONFIG, 'action_policy')
    settings = ControlSettings.from_values(policy)
    assert settings.servo == ServoConfig() and settings.limits == SafetyLimits()
    assert config.build_intents(policy) == DEFAULT_INTENTS
    segmenter = config.read_params_file(CONFIG, 'scene_segmenter')
    assert PerceptionSettings.from_values(segmenter) == PerceptionSettings()
    # A robot lists its own look-alikes; the simulator passes its objects.
    assert config.verifier_config(segmenter) is None
    simulated = StackSettings.from_params_file(CONFIG).segmenter
    assert config.verifier_config(simulated).contrasts == object_names()


@pytest.mark.parametrize('name, value, message', [
    ('max_linear_mps', 50.0, r'outside \[0.01, 5\]'),
    ('max_linear_mps', 'fast', 'expected float'),
    ('search_direction', 'up', 'not one of left, right'),
    ('command_verbs', [1, 2], 'list of strings'),
    ('use_stamped', 1, 'expected bool'),
    ('max_turn', 1.0, 'unknown parameter'),
    ('intent.go_to.behaviour', 'fly', 'not one of'),
])
def test_a_bad_value_fails_with_its_name_and_what_fits(tmp_path, name, value, message):
    document = yaml.safe_load(CONFIG.read_text())
    section = document['/**/action_policy']['ros__parameters']
    if name.startswith('intent.'):
        section['intent']['go_to']['behaviour'] = value
    else:
        section[name] = value
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(config.ConfigError, match=message) as raised:
        config.read_params_file(path, 'action_policy')
    assert name in str(raised.value)


def test_an_integer_for_a_float_parameter_is_refused_as_rclpy_refuses_it():
    with pytest.raises(config.ConfigError, match=r'max_linear_mps: write 1.0'):
        config.check_values('action_policy', {'max_linear_mps': 1})


def test_a_new_intent_needs_a_behaviour_and_phrases():
    with pytest.raises(config.ConfigError, match='intent.wave.behaviour'):
        config.check_values('action_policy', {'intents': ['stop', 'wave']})
    values = config.check_values('action_policy', {
        'intents': ['stop', 'wave'], 'intent.wave.behaviour': 'motion',
        'intent.wave.phrases': ['wave'], 'intent.wave.angular_rps': 0.3})
    assert [intent.name for intent in config.build_intents(values)] == ['stop', 'wave']


def test_a_name_is_declared_once():
    with pytest.raises(ValueError, match='twice'):
        config.table(config.SAFETY, config.SAFETY)


def test_verification_without_contrasts_is_off_and_says_why():
    values = config.check_values('scene_segmenter', {'verification_contrasts': [' ']})
    assert config.verifier_config(values) is None
    assert 'verification_contrasts' in config.verification_off_reason(values)
    listed = {**values, 'verification_contrasts': ['red mug']}
    assert config.verifier_config(listed).contrasts == ('red mug',)
    assert config.verification_off_reason(listed) == ''
    assert config.verifier_config({**listed, 'verify_targets': False}) is None
    assert 'verify_targets' in config.verification_off_reason({**listed,
                                                               'verify_targets': False})
