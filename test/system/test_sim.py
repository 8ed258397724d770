"""Simulator: seeded scenes, base kinematics, rendering, an oracle episode, a short eval."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml

from vla_ros.core import paths
from vla_ros.evaluation.lockstep import OracleMode, run_episode, StackSettings
from vla_ros.evaluation.scoring import (
    CAUSES,
    classify_outcome,
    failure_cause,
    SUCCESS_DISTANCE_M,
)
from vla_ros.sim.scene import COLOURS, generate_scene, ROBOT_RADIUS, SHAPES
from vla_ros.sim.world import SimWorld


def test_scene_generation_is_a_pure_function_of_the_seed():
    assert generate_scene(11) == generate_scene(11)
    assert generate_scene(11) != generate_scene(12)


@pytest.mark.parametrize('seed', range(40))
def test_scenes_name_one_target_and_keep_its_corridor_clear(seed):
    scene = generate_scene(seed)
    target = scene.target
    assert 1 <= len(scene.objects) <= 6
    assert target.shape in SHAPES and target.colour in COLOURS
    assert scene.command == f'go to the {target.colour} {target.shape}'
    same = [o for o in scene.objects if (o.colour, o.shape) == (target.colour, target.shape)]
    assert len(same) == 1
    start = np.array([scene.robot_x, scene.robot_y])
    goal = np.array([target.x, target.y])
    assert np.linalg.norm(goal - start) >= 1.5
    for item in scene.objects:
        if item is target:
            continue
        along = np.clip(np.dot([item.x, item.y] - start, goal - start)
                        / np.dot(goal - start, goal - start), 0, 1)
        gap = np.linalg.norm([item.x, item.y] - (start + along * (goal - start)))
        assert gap >= item.size + ROBOT_RADIUS + 0.35


def test_scenes_vary_shapes_colours_floor_and_light():
    scenes = [generate_scene(seed) for seed in range(60)]
    assert {o.shape for s in scenes for o in s.objects} == set(SHAPES)
    assert len({o.colour for s in scenes for o in s.objects}) >= 8
    assert len({s.floor_rgb for s in scenes}) == 60
    assert len({s.light_direction for s in scenes}) == 60


@pytest.fixture(scope='module')
def world():
    created = SimWorld(generate_scene(3), 160, 120)
    yield created
    created.close()


def test_the_base_tracks_twist_commands(world):
    before = world.pose()
    world.step(0.3, 0.0, 2.0)
    after = world.pose()
    moved = math.hypot(after.x - before.x, after.y - before.y)
    assert moved == pytest.approx(0.6, rel=0.02)
    heading = math.atan2(after.y - before.y, after.x - before.x)
    assert math.cos(heading - before.yaw) > 0.999  # forward is along the heading
    world.step(0.0, 0.5, 2.0)
    turned = world.pose().yaw - after.yaw
    assert turned == pytest.approx(1.0, rel=0.02)
    assert world.velocity() == pytest.approx((0.0, 0.5), abs=1e-3)


def test_driving_into_the_named_object_is_a_collision_with_it():
    """Contact is what every 'no collision' figure rests on: turn to face the target, drive
    into it, and the world names it (not the floor, not nothing).
    """
    scene = generate_scene(5)
    world = SimWorld(scene, 160, 120)
    try:
        pose, goal = world.pose(), scene.objects[scene.target_index]
        bearing = math.atan2(goal.y - pose.y, goal.x - pose.x)
        turn = math.atan2(math.sin(bearing - pose.yaw), math.cos(bearing - pose.yaw))
        world.step(0.0, math.copysign(0.5, turn), abs(turn) / 0.5)
        for _ in range(200):
            if world.collided_with:
                break
            world.step(0.3, 0.0, 0.1)
        assert world.collided_with == f'object{scene.target_index}'
    finally:
        world.close()


def test_camera_renders_and_ground_truth_masks_match_the_objects(world):
    rgb = world.render()
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8 and rgb.std() > 5
    masks = [world.object_mask(index) for index in range(len(world.scene.objects))]
    assert all(mask.shape == (120, 160) for mask in masks)
    assert not any((a & b).any() for i, a in enumerate(masks) for b in masks[i + 1:])


def oracle(params_file=None):
    return OracleMode(StackSettings.from_params_file(params_file or paths.default_params_file()))


def test_an_oracle_episode_reaches_the_named_object():
    result = run_episode(generate_scene(100), oracle())
    assert result.outcome == 'success', result.summary()
    assert result.final_distance_m <= SUCCESS_DISTANCE_M and not result.collided_with
    assert 0 < result.spl <= 1 and result.path_length_m > 0.5
    assert result.statuses[0] == 'go_to' and result.statuses[-1] == 'arrived'


def test_an_episode_runs_with_the_params_files_values(tmp_path):
    """The evaluator reads the YAML the nodes read: a slower robot takes longer."""
    document = yaml.safe_load(paths.default_params_file().read_text())
    document['/**/action_policy']['ros__parameters']['approach_speed_mps'] = 0.1
    slow = tmp_path / 'slow.yaml'
    slow.write_text(yaml.safe_dump(document))
    usual = run_episode(generate_scene(100), oracle())
    slower = run_episode(generate_scene(100), oracle(slow))
    assert slower.outcome == 'success'
    assert slower.time_s > 1.5 * usual.time_s


def test_an_oracle_episode_arrives_with_a_segmenter_at_0_4_hz_and_its_latency():
    """Segmentations 2.5 s apart, each 2.5 s late: the tracker keeps the target current in
    between. Without it the robot is held between targets (the stack before tracking).
    """
    from dataclasses import replace

    settings = oracle().settings
    slow = replace(settings, segmenter={**settings.segmenter, 'max_rate_hz': 0.4})
    result = run_episode(generate_scene(100), OracleMode(slow))
    assert result.outcome == 'success', result.summary()
    untracked = replace(slow, segmenter={**slow.segmenter, 'track_targets': False})
    held = run_episode(generate_scene(100), OracleMode(untracked), max_time_s=30.0)
    assert held.outcome != 'success'
    assert 'stopped: stale input' in held.statuses


def test_a_command_the_policy_does_not_understand_ends_the_episode_unmoved(tiny_clip_dir,
                                                                            tiny_clipseg_dir):
    """Real mode runs the nodes' pipeline: intent matching of a random tiny CLIP refuses."""
    from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
    from vla_ros.core.models import load_model
    from vla_ros.evaluation.lockstep import RealMode

    settings = StackSettings.from_params_file(paths.default_params_file())
    encoder = ClipEncoder(load_model('clip', str(tiny_clip_dir), 'cpu'))
    segmenter = ClipSegSegmenter(load_model('clipseg', str(tiny_clipseg_dir), 'cpu'))
    pipeline = RealMode(settings, encoder, segmenter, encoder)
    for command in ('', 'asdfghjkl'):
        result = run_episode(generate_scene(3), pipeline, max_time_s=3.0, command=command)
        assert result.statuses == [f'not understood: {command or "(empty command)"}']
        assert result.path_length_m == 0.0 and not result.moved
        assert result.outcome == 'intent' and result.cause == 'language'
        assert result.time_s < 0.5  # a final status: the episode ends at once


def test_measured_motions_end_within_tolerance_in_the_simulator(tiny_clipseg_dir):
    """`vla-ros eval --task motion`'s episodes: the embedded CLIP reads the command, the
    simulator's odometry ends it; scored on where the base really went.
    """
    from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
    from vla_ros.core.models import load_model
    from vla_ros.evaluation.lockstep import RealMode
    from vla_ros.evaluation.motion_task import motion_command

    if not (paths.default_model_dir('clip') / 'config.json').is_file():
        pytest.skip('no embedded CLIP in models/')
    settings = StackSettings.from_params_file(paths.default_params_file())
    encoder = ClipEncoder(load_model('clip', settings.policy['model'], 'cpu'))
    segmenter = ClipSegSegmenter(load_model('clipseg', str(tiny_clipseg_dir), 'cpu'))
    pipeline = RealMode(settings, encoder, segmenter, encoder)
    kinds = set()
    for seed in (0, 1):  # a distance and an angle
        scene = generate_scene(seed)
        _, command, *asked = motion_command(scene, settings)
        kinds.add(asked[0])
        result = run_episode(scene, pipeline, max_time_s=30.0, command=command,
                             expected='motion', asked=asked)
        assert result.outcome == 'success', (command, result.status, result.moved_m,
                                             result.turned_deg)
        made = result.moved_m if asked[0] == 'distance' else result.turned_deg
        assert made == pytest.approx(asked[1], abs=0.05 if asked[0] == 'distance' else 2.0)
    assert kinds == {'distance', 'angle'}


def test_a_go_to_heard_as_find_is_a_language_failure_not_a_control_one():
    """The evaluator's tasks are go_to: 'found the X' (a look_for) ended it standing
    off the target, which the command's words, not the controller, decided.
    """
    scene = generate_scene(5)
    world = SimWorld(scene, 32, 24)
    try:
        outcome, _ = classify_outcome(world, scene, f'found {scene.target.name}', False)
    finally:
        world.close()
    assert outcome == 'intent' and failure_cause(outcome, 'target') == 'language'


def test_failures_are_put_down_to_perception_control_language_or_time():
    assert failure_cause('success', 'target') == ''
    assert failure_cause('wrong object', 'other') == 'perception: wrong object'
    assert failure_cause('stopped short', 'other') == 'perception: false detection'
    assert failure_cause('stopped short', 'target') == 'control'
    assert failure_cause('collision', 'target') == 'control'
    assert failure_cause('timeout', 'none') == 'perception: miss'
    assert failure_cause('not found', 'none') == 'perception: miss'
    assert failure_cause('not found', 'target') == 'perception: miss'  # never confirmed
    assert failure_cause('timeout', 'target') == 'timeout'
    assert failure_cause('intent', 'none') == 'language'
    assert failure_cause('input lost', 'target') == 'transport'
    assert failure_cause('stale input', 'target') == 'perception: too slow'
    assert {failure_cause(outcome, on) for outcome in
            ('collision', 'wrong object', 'stopped short', 'not found', 'timeout', 'intent',
             'input lost', 'stale input')
            for on in ('target', 'other', 'none')} <= set(CAUSES)


def test_a_three_episode_eval_writes_its_outputs(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'eval', '--mode', 'oracle', '--episodes', '3',
         '--seed', '3', '--output', str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['episode_count'] == 3 and len(summary['episodes']) == 3
    assert 0.0 <= summary['success_rate'] <= 1.0
    for key in ('spl', 'collisions', 'outcomes', 'failure_causes', 'mean_time_to_arrive_s',
                'perception_ms_p50', 'mean_path_length_m'):
        assert key in summary
    assert summary['world'] == 'arena' and 'visible_from_start_rate' not in summary
    assert (tmp_path / 'episodes.png').stat().st_size > 10_000
    assert sum(summary['outcomes'].values()) == 3
    assert f"{summary['success_rate']:.0%} success" in result.stdout


def test_an_eval_in_rooms_reports_the_way_round_and_what_was_in_view(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'eval', '--world', 'rooms', '--mode', 'oracle',
         '--episodes', '1', '--seed', '2', '--max-time', '5', '--output', str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['world'] == 'rooms' and summary['mean_path_length_m'] >= 0.0
    assert summary['visible_from_start_rate'] in (0.0, 1.0)
    assert 'success_rate_visible_from_start' in summary
    assert 'success_rate_hidden_from_start' in summary
    episode = summary['episodes'][0]
    assert episode['world'] == 'rooms' and isinstance(episode['visible_from_start'], bool)
    assert episode['shortest_way_m'] > 0.0
    assert 'in view from the start' in result.stdout and 'travelled' in result.stdout


def test_eval_refuses_clutter_in_rooms(tmp_path):
    from vla_ros.commands.main import main

    assert main(['eval', '--world', 'rooms', '--clutter', '3', '--mode', 'oracle',
                 '--output', str(tmp_path)]) == 2
    assert not (tmp_path / 'summary.json').exists()


def test_eval_in_real_mode_without_models_says_why(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'eval', '--mode', 'real', '--episodes', '1',
         '--clip-model', str(tmp_path / 'missing'), '--output', str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert 'cannot run' in result.stderr and 'does not exist' in result.stderr


def test_eval_over_dds_refuses_a_backend_it_cannot_pass_on(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'eval', '--mode', 'real', '--episodes', '1',
         '--transport', 'dds', '--backend', 'torch', '--output', str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert 'lockstep transport only' in result.stderr
    assert not (tmp_path / 'summary.json').exists()


def test_an_interrupt_while_the_node_processes_start_stops_those_already_started(
        tmp_path, monkeypatch):
    """Ctrl-C during `vla-ros eval --transport dds`'s start of an episode's four processes:
    the ones already running are stopped, none is left behind.
    """
    import subprocess

    from vla_ros.evaluation import dds

    started, real_popen = [], subprocess.Popen

    def popen(command, **kwargs):
        if len(started) == 2:
            raise KeyboardInterrupt
        started.append(real_popen(['sleep', '60'], **kwargs))  # a node process stands in
        return started[-1]

    monkeypatch.setattr(dds.subprocess, 'Popen', popen)
    with pytest.raises(KeyboardInterrupt):
        dds.StackProcesses(tmp_path / 'params.yaml', tmp_path / 'overlay.yaml', tmp_path)
    assert len(started) == 2 and all(process.poll() is not None for process in started)


def test_a_command_of_two_steps_reaches_both_things_in_order():
    """`vla-ros eval --task sequence`'s episode: each leg is scored where its step ended."""
    from vla_ros.core.status import split_step
    from vla_ros.evaluation.sequence_task import sequence_scene

    scene, template, command = sequence_scene(2)  # go to one, wait 2 seconds, go to another
    assert template.count('{') == len(scene.sequence) == 2
    result = run_episode(scene, oracle(), max_time_s=60.0, command=command)
    assert result.outcome == 'success', result.summary()
    assert [split_step(status)[0] for status in result.statuses][-1] == 3
    assert 'step 2/3: waiting (2 s)' in result.statuses
    assert result.status == 'step 3/3: arrived' and 0.0 < result.spl <= 1.0


def beside(scene, index):
    """The scene with the robot starting 0.2 m from the rim of object `index`."""
    from dataclasses import replace

    thing = scene.objects[index]
    return replace(scene, robot_x=thing.x + thing.size + ROBOT_RADIUS + 0.2, robot_y=thing.y,
                   robot_yaw=math.pi)


def test_a_leg_that_ended_away_from_its_thing_fails_the_sequence():
    from vla_ros.evaluation.sequence_task import LegScore, sequence_scene, step_ended

    scene, _, _ = sequence_scene(2)
    assert step_ended('step 1/2: approaching red ball', 'step 2/2: go_to')
    assert not step_ended('step 1/3: waiting (2 s)', 'step 2/3: go_to')
    world = SimWorld(beside(scene, scene.sequence[1]))  # where the second thing is
    try:
        legs = LegScore(scene)
        legs.step_ended(world)  # the first step ended here: not at the first thing
        assert legs.outcomes[0] != 'success'
        assert legs.score(world, 'step 3/3: arrived', False, 'target', 1.0)[:2] == (
            legs.outcomes[0], False)  # the last leg arrived, the first did not
        fresh = LegScore(scene)
        fresh.outcomes.append('success')
        assert fresh.score(world, 'step 3/3: arrived', False, 'target', 1.0)[:2] == (
            'success', True)
    finally:
        world.close()


def test_coming_back_is_scored_where_the_robot_stands_at_the_end():
    from vla_ros.evaluation.sequence_task import HOME, LegScore, sequence_scene

    scene, template, _ = sequence_scene(6)
    assert template == 'go to the {0} and come back' and scene.sequence[-1] == HOME
    at_start, at_thing = SimWorld(scene), SimWorld(beside(scene, scene.sequence[0]))
    try:
        legs = LegScore(scene)
        legs.outcomes.append('success')  # the thing was reached, then:
        for status, outcome in (('step 2/2: done: came back (0.1 m from the start)', 'success'),
                                ('step 2/2: coming back', 'stopped short'),
                                ('step 2/2: blocked', 'stopped short')):
            assert legs.score(at_start, status, False, 'none', 1.0)[0] == outcome, status
        # Came back, it says, but it stands at the thing: not back.
        assert legs.score(at_thing, 'step 2/2: done: came back (0.1 m from the start)', False,
                          'none', 1.0)[0] == 'stopped short'
        # Arrived at the thing, never came back.
        assert LegScore(scene).score(at_thing, 'step 1/2: arrived', False, 'none', 1.0)[0] == (
            'stopped short')
    finally:
        at_start.close()
        at_thing.close()


def test_relations_scenes_show_every_one_alike_from_the_start():
    from vla_ros.evaluation.relations_task import relations_scene

    for seed in range(300):  # every template can be laid out
        relations_scene(seed)
    for seed in range(6):
        scene, template, command = relations_scene(seed)
        assert command.startswith(template.split('{')[0])
        world = SimWorld(scene)
        try:
            labels = world.label_image()
            name = scene.target.name
            alike = [index for index, thing in enumerate(scene.objects) if thing.name == name]
            assert len(alike) in (2, 3)
            assert all((labels == index + 1).sum() > 20 for index in alike), command
        finally:
            world.close()


def test_which_one_is_the_one_the_relation_picks_and_no_word_of_which_is_asked():
    """The oracle's segmenter shows every one alike; the relation picks from the geometry
    the robot sees, and the command that does not say which holds the robot still.
    """
    from vla_ros.evaluation.relations_task import relations_scene

    scene, template, command = relations_scene(15)
    assert template == 'go to the left {0}'
    result = run_episode(scene, oracle(), command=command)
    assert result.outcome == 'success', result.summary()
    unsaid = run_episode(scene, oracle(), command=f'go to the {scene.target.name}',
                         expected='ambiguous')
    assert unsaid.outcome == 'said ambiguous' and unsaid.path_length_m == 0.0, \
        unsaid.summary()
    assert unsaid.status.startswith(f'ambiguous: 2 {scene.target.name}s in view')


def test_a_new_command_about_the_same_things_asks_afresh():
    """'the left one', then 'the right one' of the same two: the second is not the first
    one followed on.
    """
    from vla_ros.evaluation.relations_task import relations_scene

    scene, _, command = relations_scene(15)  # go to the left blue cylinder
    world = SimWorld(scene)
    try:
        perception = oracle().perception(world, scene)
        rgb = world.render()
        perception.command(command)
        left = perception.see(rgb, 0.0).target
        perception.command(command.replace('left', 'right'))
        right = perception.see(rgb, 0.1).target
        assert left.visible and right.visible and left.x < right.x - 0.2
        perception.command(f'go to the {scene.target.name}')
        unsaid = perception.see(rgb, 0.2)
        assert not unsaid.target.visible and unsaid.alike == 2
    finally:
        world.close()


def test_arriving_between_two_alike_counts_the_one_the_robot_faces():
    """Two red balls 0.6 m apart, the robot stopped within 0.5 m of both: it arrived at the
    one it faces (the servo stops facing what it went to), whichever is nearer.
    """
    from dataclasses import replace

    from vla_ros.evaluation.scoring import classify_outcome
    from vla_ros.sim.scene import SceneObject

    base = generate_scene(100)
    balls = (SceneObject('ball', 'red', 0.15, 0.0, 0.0, 0.0),
             SceneObject('ball', 'red', 0.15, 0.0, 0.9, 0.0))
    scene = replace(base, objects=balls, target_index=0, obstacles=(), robot_x=0.55,
                    robot_y=0.5, robot_yaw=math.atan2(-0.5, -0.55))  # facing ball 0
    for target, expected in ((0, 'success'), (1, 'wrong object')):
        world = SimWorld(replace(scene, target_index=target))
        try:
            assert all(world.distance_to(index) <= SUCCESS_DISTANCE_M for index in (0, 1))
            assert world.distance_to(1) < world.distance_to(0)  # the other one is nearer
            assert classify_outcome(world, world.scene, 'arrived', False)[0] == expected
        finally:
            world.close()
