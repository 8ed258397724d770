"""`vla-ros eval`: seeded "go to the <colour> <shape>" episodes, scored and plotted.

    vla-ros eval --mode oracle --episodes 100 --seed 0 --output runs/eval-oracle
    vla-ros eval --world rooms --mode oracle --episodes 20 --output runs/eval-rooms
    vla-ros eval --commands test/data/go_to_phrasings.yaml --episodes 100 --output runs/phrasings

With --commands, each episode draws its command from a file instead (see load_commands); the
summary then reports success per command and the false-accept rate of commands that must not
move the robot. With --world rooms the scenes are houses (sim/rooms.py) whose target is mostly
in another room: SPL measures the shortest way round the walls, and the summary splits success
by whether the target could be seen from the start.

Writes DIR/summary.json (success_rate 0..1, spl, collisions, outcomes, timing, per-episode
records) and DIR/episodes.png (top-down trajectories and outcome counts). Exits non-zero only
when it cannot run, never because episodes fail.
"""

from collections import Counter
import json
import math
from pathlib import Path
import sys
import textwrap
import time

from vla_ros.core.config import BACKENDS, DEVICES, PRECISIONS
from vla_ros.core.status import IDLE, is_refusal, is_stopped, own

OUTCOME_COLOURS = {'success': 'tab:green', 'collision': 'tab:red', 'wrong object': 'tab:purple',
                   'stopped short': 'tab:orange', 'not found': 'tab:gray',
                   'timeout': 'tab:brown', 'intent': 'tab:pink', 'refused': 'tab:green',
                   'moved': 'tab:red', 'held': 'tab:olive', 'input lost': 'tab:cyan',
                   'blocked': 'tab:blue'}
COMMAND_KINDS = ('go_to', 'not_understood', 'ambiguous')
TEMPLATE_KINDS = ('go_to', 'ambiguous')  # their commands name the scene's {object}


def load_commands(path) -> list:
    """[(kind, command)] from a YAML file {go_to: [templates], not_understood: [commands],
    ambiguous: [templates naming one of several alike: --task relations]} or a text file
    (one per line, # comments): a line with {object} is a go_to template (the
    scene's target replaces it), any other line a command that must not move the robot.
    """
    import yaml

    text = Path(path).read_text(encoding='utf-8')
    if Path(path).suffix in ('.yaml', '.yml'):
        table = yaml.safe_load(text)
        if not isinstance(table, dict) or not set(table) <= set(COMMAND_KINDS):
            raise ValueError(f'{path}: a mapping with the keys {COMMAND_KINDS} is expected')
        items = [(kind, command) for kind in COMMAND_KINDS for command in table.get(kind) or ()]
    else:
        lines = [line.strip() for line in text.splitlines()]
        items = [('go_to' if '{object}' in line else 'not_understood', line)
                 for line in lines if line and not line.startswith('#')]
    for kind, command in items:
        if not isinstance(command, str):
            raise ValueError(f'{path}: {command!r} is not a string (quote it in YAML)')
        if kind in TEMPLATE_KINDS and (command.count('{object}') != 1
                                       or command.replace('{object}', '').count('{')):
            raise ValueError(f"{path}: the {kind} template {command!r} needs one '{{object}}' "
                             'and no other braces')
    if not items:
        raise ValueError(f'{path}: no commands in it')
    return items


def draw_commands(items, first_seed: int, count: int) -> list:
    """One (kind, template) per episode: the list shuffled once by the first seed, then in
    turn, so that 100 episodes over 110 commands use 100 different ones.
    """
    import random

    order = list(items)
    random.Random(first_seed).shuffle(order)
    return [order[index % len(order)] for index in range(count)]


def by_command(results) -> dict:
    """Episodes and successes per command template, and the two kinds' rates."""
    table = {}
    for result in results:
        entry = table.setdefault(result.template, {'kind': result.expected, 'episodes': 0,
                                                   'successes': 0})
        entry['episodes'] += 1
        entry['successes'] += result.success
    go_to = [result for result in results if result.expected == 'go_to']
    refused = [result for result in results if result.expected == 'not_understood']
    alike = [result for result in results if result.expected == 'ambiguous']
    summary = {'by_command': table}
    if alike:
        summary['ambiguous'] = {
            'episodes': len(alike),
            'guessed_rate': sum(r.outcome == 'guessed' for r in alike) / len(alike),
            'said_ambiguous_rate': sum(r.outcome == 'said ambiguous' for r in alike)
            / len(alike),
            'guessed': [f'{r.seed}: {r.command}' for r in alike if r.outcome == 'guessed'],
            'held': [f'{r.seed}: {r.command} -> {r.status}' for r in alike
                     if r.outcome == 'held']}
    if go_to:
        summary['go_to'] = {'episodes': len(go_to),
                            'success_rate': sum(r.success for r in go_to) / len(go_to),
                            'not_understood': sum(is_refusal(r.status)
                                                  for r in go_to)}
    if refused:
        summary['not_understood'] = {
            'episodes': len(refused),
            'false_accept_rate': sum(r.moved for r in refused) / len(refused),
            'said_not_understood_rate': sum(r.outcome == 'refused' for r in refused)
            / len(refused),
            'moved': [r.command for r in refused if r.moved],
            'held': [f'{r.command} -> {r.status}' for r in refused if r.outcome == 'held']}
    return summary


def draw_scene(axes, scene, trajectory=None, title=''):
    """A top-down view: arena, objects (target ringed; a sequence's numbered in order), the
    robot's path.
    """
    from matplotlib.patches import Circle, Rectangle

    half = scene.arena_half
    axes.add_patch(Rectangle((-half, -half), 2 * half, 2 * half, fill=False, lw=1.5))
    ringed = scene.sequence or (scene.target_index,)
    for index, item in enumerate(scene.objects):
        axes.add_patch(Circle((item.x, item.y), item.size, color=item.rgb, ec='black', lw=0.5))
        if index in ringed:
            axes.add_patch(Circle((item.x, item.y), item.size + 0.12, fill=False, ls='--',
                                  ec='black', lw=1.0))
        if index in scene.sequence:
            axes.annotate(str(scene.sequence.index(index) + 1), (item.x, item.y),
                          textcoords='offset points', xytext=(7, 7), fontsize=8,
                          weight='bold')
    for item in scene.obstacles:
        corner = (-item.half_length, -item.half_width)
        c, s = math.cos(item.yaw), math.sin(item.yaw)
        axes.add_patch(Rectangle((item.x + c * corner[0] - s * corner[1],
                                  item.y + s * corner[0] + c * corner[1]),
                                 2 * item.half_length, 2 * item.half_width,
                                 angle=math.degrees(item.yaw), color=item.rgb, ec='black',
                                 lw=0.5))
    axes.plot([scene.robot_x], [scene.robot_y], 'o', mfc='white', mec='black', markersize=8)
    axes.annotate('start', (scene.robot_x, scene.robot_y), textcoords='offset points',
                  xytext=(6, 6), fontsize=7)
    heading = (0.35 * math.cos(scene.robot_yaw), 0.35 * math.sin(scene.robot_yaw))
    axes.arrow(scene.robot_x, scene.robot_y, *heading, width=0.02, color='gray')
    if trajectory:
        xs, ys = zip(*trajectory)
        axes.plot(xs, ys, color='black', lw=1.2)
        axes.plot(xs[-1:], ys[-1:], 'o', color='black', markersize=4)
    axes.set_xlim(-half - 0.2, half + 0.2)
    axes.set_ylim(-half - 0.2, half + 0.2)
    axes.set_aspect('equal')
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=8)


def plot_results(results, scenes, path: Path, title: str):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    shown = min(len(results), 8)
    figure, grid = plt.subplots(3, 3, figsize=(11, 11))
    grid = grid.ravel()
    for axes, result, scene in zip(grid[:shown], results, scenes):
        said = textwrap.fill(f'seed {result.seed}: "{result.command}"', 48)
        draw_scene(axes, scene, result.trajectory,
                   f'{said}\n{result.outcome}, {result.time_s:.1f} s, gap '
                   f'{result.final_distance_m:.2f} m')
        for spine in axes.spines.values():
            spine.set_edgecolor(OUTCOME_COLOURS.get(result.outcome, 'black'))
            spine.set_linewidth(3)
    for axes in grid[shown:-1]:
        axes.axis('off')
    counts = Counter(result.outcome for result in results)
    names = list(counts)
    grid[-1].bar(names, [counts[name] for name in names],
                 color=[OUTCOME_COLOURS.get(name, 'gray') for name in names])
    grid[-1].set_title('outcomes', fontsize=9)
    grid[-1].tick_params(axis='x', labelsize=7, rotation=30)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def model_runtime(args, values: dict, kind: str = '') -> dict:
    """How a model node loads its models of `kind` (core.models.runtime_options), with the
    command line's device, backend and precision where it has them.
    """
    from vla_ros.core.models import runtime_options

    options = runtime_options(values, kind)
    for name in ('device', 'backend', 'precision'):
        options[name] = getattr(args, name, None) or options[name]
    return options


def runtime_roles(encoder, intent_encoder, segmenter, verifier_encoder):
    """(role, model) of what real mode runs, for the log and the summary."""
    return [(role, model) for role, model in (
        ('commands', encoder), ('intents', intent_encoder), ('segmentation', segmenter),
        ('verification', verifier_encoder)) if model is not None]


def load_pipeline(args, settings, params_file):
    """The lockstep pipeline of `args.mode`, with the models the params file names (or the
    command line's --clip-model / --clipseg-model) on the backends it names (or --backend),
    as command_embedder and scene_segmenter would run them.
    """
    from vla_ros.core.config import read_params_file
    from vla_ros.evaluation.lockstep import OracleMode, RealMode

    if args.mode == 'oracle':
        return OracleMode(settings)
    from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
    from vla_ros.core.models import ModelCache

    clip_source = args.clip_model or settings.policy['model']
    clipseg_source = args.clipseg_model or settings.segmenter['model']
    verification_source = args.clip_model or settings.segmenter['verification_model']
    text_runtime = model_runtime(args, read_params_file(params_file, 'command_embedder'))
    image_runtime = model_runtime(args, settings.segmenter)
    print('[eval] loading CLIP and CLIPSeg ...', flush=True)
    cache = ModelCache()
    encoder = ClipEncoder(cache.get('clip', clip_source, **text_runtime))
    # action_policy encodes its intents' phrasings on torch (once, at start).
    intent_encoder = ClipEncoder(cache.get('clip', clip_source,
                                           args.device or settings.policy['device'],
                                           settings.policy['dtype']))
    segmenter = ClipSegSegmenter(cache.get('clipseg', clipseg_source, **model_runtime(
        args, settings.segmenter, 'clipseg')))
    verifier_encoder = ClipEncoder(cache.get('clip', verification_source, **image_runtime))
    for role, model in runtime_roles(encoder, intent_encoder, segmenter, verifier_encoder):
        print(f'[eval] {role}: {model.loaded.runtime}', flush=True)
    return RealMode(settings, encoder, segmenter, verifier_encoder, intent_encoder)



def default_pipeline():
    """(pipeline, settings) as `vla-ros eval --mode real` loads them with no options: the
    installed params file's models on its backends (for benchmarks that need the models).
    """
    import argparse

    from vla_ros.core import paths
    from vla_ros.evaluation.lockstep import StackSettings

    options = argparse.ArgumentParser()
    add_arguments(options)
    params_file = paths.default_params_file()
    settings = StackSettings.from_params_file(params_file)
    return load_pipeline(options.parse_args([]), settings, params_file), settings

def stale_stops(statuses, after: str = '') -> int:
    """'stopped: stale input' events once the robot was acting (not the wait for the first
    target or for simulated time to start), or only those straight after a status starting
    with `after`.
    """
    count, acting = 0, False
    for previous, status in zip(statuses, statuses[1:]):
        acting = acting or not (previous == IDLE or is_stopped(previous))
        if own(status) == 'stopped: stale input' and acting and own(previous).startswith(after):
            count += 1
    return count


def by_visibility(results) -> dict:
    """Rooms: the share of episodes whose target was in view from the start, and success
    among those and among the others (None where there were none).
    """
    seen = [result for result in results if result.visible_from_start]
    hidden = [result for result in results if result.visible_from_start is False]

    def rate(group):
        return sum(result.success for result in group) / len(group) if group else None

    return {'visible_from_start_rate': len(seen) / len(results) if results else 0.0,
            'success_rate_visible_from_start': rate(seen),
            'success_rate_hidden_from_start': rate(hidden)}


def summarise(results, mode, seed, wall_s, transport='lockstep', world='arena'):
    count = len(results)
    successes = [result for result in results if result.success]
    return {
        'mode': mode, 'transport': transport, 'world': world, 'seed': seed,
        'episode_count': count,
        'success_rate': len(successes) / count if count else 0.0,
        'spl': sum(result.spl for result in results) / count if count else 0.0,
        'mean_path_length_m': (sum(result.path_length_m for result in results) / count
                               if count else 0.0),
        **(by_visibility(results) if world == 'rooms' else {}),
        'collisions': sum(result.outcome == 'collision' for result in results),
        'outcomes': dict(Counter(result.outcome for result in results)),
        'failure_causes': dict(Counter(result.cause for result in results if result.cause)),
        'mean_time_to_arrive_s': (sum(result.time_s for result in successes) / len(successes)
                                  if successes else None),
        'perception_ms_p50': (sorted(result.perception_ms_p50 for result in results)[count // 2]
                              if count else None),
        'wall_time_s': wall_s,
        **({'stale_input_stops': sum(stale_stops(result.statuses) for result in results),
            'stale_input_stops_while_approaching': sum(
                stale_stops(result.statuses, after='approaching ') for result in results),
            'target_gap_max_s': max((result.target_gap_max_s for result in results),
                                    default=0.0)} if transport == 'dds' else {}),
        'episodes': [result.summary() for result in results],
    }


def right_instance(results) -> dict:
    """--task relations: of the episodes that ended 'arrived', the share at the thing the
    relation picks (not another of its kind).
    """
    arrived = [result for result in results if own(result.status) == 'arrived']
    right = [result for result in arrived if result.outcome == 'success']
    return {'arrived': len(arrived),
            'right_instance_rate': len(right) / len(arrived) if arrived else None,
            'wrong_instance': [f'{r.seed}: {r.command}' for r in arrived
                               if r.outcome == 'wrong object']}


def run_eval(args) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from vla_ros.core import paths
    from vla_ros.core.models import ModelLoadError
    from vla_ros.evaluation.lockstep import run_episode, StackSettings
    from vla_ros.evaluation.motion_task import motion_command
    from vla_ros.evaluation.relations_task import relations_scene
    from vla_ros.evaluation.sequence_task import SEQUENCE_S, sequence_scene
    from vla_ros.sim.rooms import build_scene, EPISODE_S

    if args.max_time is None:
        args.max_time = SEQUENCE_S if args.task == 'sequence' else EPISODE_S[args.world]
    output = Path(args.output)
    params_file = args.params_file or paths.default_params_file()
    try:
        drawn = None
        if args.world == 'rooms' and args.clutter:
            raise ValueError('--clutter puts boxes across the straight way in the open arena; '
                             '--world rooms has walls and furniture of its own')
        if args.task == 'sequence' and (args.world != 'arena' or args.commands):
            raise ValueError('--task sequence: the arena, no --commands')
        if args.task == 'relations' and (args.world != 'arena' or args.clutter):
            raise ValueError('--task relations: its own scenes in the arena, no --clutter')
        if args.task == 'motion' and (args.mode != 'real' or args.transport != 'lockstep'
                                      or args.commands):
            raise ValueError('--task motion measures the command path: --mode real, '
                             'lockstep transport, no --commands')
        if args.commands:
            if args.mode != 'real':
                raise ValueError('--commands measures language: it needs --mode real')
            drawn = draw_commands(load_commands(args.commands), args.seed, args.episodes)
            if (args.task == 'relations') != all(kind == 'ambiguous' for kind, _ in drawn):
                raise ValueError('ambiguous commands (which of several alike?) go with --task '
                                 'relations, and it takes only those from --commands')
            if args.transport == 'dds' and any(kind == 'not_understood' for kind, _ in drawn):
                raise ValueError('--commands with commands that must not move the robot: '
                                 'lockstep transport only (it watches every velocity)')
        if (args.backend or args.precision) and (args.mode != 'real'
                                                 or args.transport == 'dds'):
            raise ValueError('--backend and --precision: real mode, lockstep transport only '
                             '(oracle runs no model; over DDS the nodes run the params '
                             "file's backend and precision)")
        output.mkdir(parents=True, exist_ok=True)
        settings = StackSettings.from_params_file(params_file)
        if not args.verify:
            settings = replace(settings, segmenter={**settings.segmenter,
                                                    'verify_targets': False})
        if not args.fovea:
            settings = replace(settings, segmenter={**settings.segmenter, 'fovea': False})
        if args.transport == 'dds':
            from vla_ros.evaluation.dds import DdsEpisodes
            from vla_ros.nodes.process import install_stop_signals
            # SIGTERM too stops the node processes; a second signal cannot cut that short.
            install_stop_signals()
            pipeline = DdsEpisodes(args, params_file)
        else:
            pipeline = load_pipeline(args, settings, params_file)
    except (OSError, ModelLoadError, ValueError) as error:
        print(f'[eval] cannot run: {error}', file=sys.stderr)
        return 2
    results, scenes, started = [], [], time.monotonic()
    progress = tqdm(range(args.seed, args.seed + args.episodes),
                    desc=f'eval {args.mode} {args.transport}', unit='episode')
    try:
        for episode, seed in enumerate(progress):
            scene = build_scene(args.world, seed, args.clutter)
            kind, template = drawn[episode] if drawn else ('go_to', scene.command)
            command, asked = template.replace('{object}', scene.target.name), None
            if args.task == 'sequence':
                scene, template, command = sequence_scene(seed, args.clutter)
            if args.task == 'relations':
                scene, template, command = relations_scene(seed)
                if drawn:
                    command = drawn[episode][1].replace('{object}', scene.target.name)
                    template = drawn[episode][1]
            scenes.append(scene)
            if args.task == 'motion':
                template, command, *asked = motion_command(scene, settings)
                kind = 'motion'
            if args.transport == 'dds':
                result = pipeline.run(scene, max_time_s=args.max_time, command=command,
                                      expected=kind)
            else:
                result = run_episode(scene, pipeline, max_time_s=args.max_time,
                                     command=command, expected=kind,
                                     perception_latency=args.perception_latency,
                                     asked=asked)
            result.template = template
            results.append(result)
            rate = sum(result.success for result in results) / len(results)
            progress.set_postfix(success=f'{rate:.0%}', last=results[-1].outcome)
    except RuntimeError as error:  # a node process died or never became ready
        print(f'[eval] cannot go on: {error}', file=sys.stderr)
        return 2
    finally:
        if args.transport == 'dds':
            pipeline.close()
    summary = summarise(results, args.mode, args.seed, time.monotonic() - started,
                        args.transport, args.world)
    summary['params_file'] = str(params_file)
    summary['clutter'] = args.clutter
    summary['segmenter_max_rate_hz'] = settings.segmenter['max_rate_hz']
    summary['track_targets'] = settings.segmenter['track_targets']
    summary['perception_latency'] = ('auto' if args.perception_latency is None
                                     else args.perception_latency)
    summary['target_verification'] = args.mode == 'real' and settings.segmenter[
        'verify_targets']
    summary['fovea'] = args.mode == 'real' and settings.segmenter['fovea']
    if args.mode == 'real' and args.transport == 'lockstep':
        summary['runtimes'] = {role: model.loaded.runtime for role, model in runtime_roles(
            pipeline.encoder, pipeline.intent_encoder, pipeline.segmenter,
            pipeline.verifier_encoder if summary['target_verification'] else None)}
    if drawn:
        summary['commands_file'] = str(args.commands)
    if drawn or args.task in ('motion', 'sequence', 'relations'):
        summary.update(by_command(results))
    if args.task == 'relations' and not drawn:
        summary.update(right_instance(results))
    summary['task'] = args.task
    if args.task == 'motion':
        summary['motion_errors'] = motion_errors(results)
    (output / 'summary.json').write_text(json.dumps(summary, indent=2))
    spl_text = '' if args.task == 'motion' else f'SPL {summary["spl"]:.2f}, '
    world_text = '' if args.world == 'arena' else f', {args.world}'
    title = (f'{args.mode} ({args.transport}{world_text}): {summary["success_rate"]:.0%} '
             f'success, {spl_text}{summary["collisions"]} collisions, '
             f'{len(results)} episodes')
    plot_results(results, scenes, output / 'episodes.png', title)
    print(f'[eval] {title}')
    print(f'[eval] travelled {summary["mean_path_length_m"]:.2f} m an episode on average')
    if args.world == 'rooms':
        report_visibility(summary)
    print(f'[eval] outcomes: {summary["outcomes"]}')
    print(f'[eval] failure causes: {summary["failure_causes"]}')
    if args.task == 'motion':
        errors = summary['motion_errors']
        print(f"[eval] motion: distances off by {errors['distance_m_p50']:.3f} m p50, "
              f"{errors['distance_m_max']:.3f} max; angles off by "
              f"{errors['angle_deg_p50']:.1f}° p50, {errors['angle_deg_max']:.1f}° max")
    if drawn or args.task in ('motion', 'sequence', 'relations'):
        report_commands(summary)
    if summary.get('right_instance_rate') is not None:
        print(f"[eval] the right one of its kind: {summary['right_instance_rate']:.0%} of "
              f"the {summary['arrived']} episodes that arrived")
    if args.transport == 'dds':
        print(f'[eval] stale-input stops: {summary["stale_input_stops"]} '
              f'({summary["stale_input_stops_while_approaching"]} while approaching); longest '
              f'wait between targets {summary["target_gap_max_s"]:.2f} s')
    print(f'[eval] wrote {output / "summary.json"} and {output / "episodes.png"}')
    return 0


def motion_errors(results) -> dict:
    """How far measured motions ended from what was asked: p50 and max, by kind."""
    from vla_ros.evaluation.motion_task import motion_error

    errors = {}
    for kind, unit in (('distance', 'm'), ('angle', 'deg')):
        gaps = sorted(motion_error(result.asked, result.moved_m, result.turned_deg)
                      for result in results if result.asked and result.asked[0] == kind)
        errors[f'{kind}_{unit}_p50'] = gaps[len(gaps) // 2] if gaps else 0.0
        errors[f'{kind}_{unit}_max'] = gaps[-1] if gaps else 0.0
        errors[f'{kind}_episodes'] = len(gaps)
    return errors


def report_visibility(summary) -> None:
    def rate(value):
        return 'n/a' if value is None else f'{value:.0%}'

    print(f"[eval] target in view from the start: {summary['visible_from_start_rate']:.0%} "
          f"of episodes; success {rate(summary['success_rate_visible_from_start'])} of "
          f"those, {rate(summary['success_rate_hidden_from_start'])} of the others")


def report_commands(summary) -> None:
    if 'go_to' in summary:
        go_to = summary['go_to']
        print(f"[eval] go_to commands: {go_to['success_rate']:.0%} success in "
              f"{go_to['episodes']} episodes, {go_to['not_understood']} not understood")
    if 'not_understood' in summary:
        refused = summary['not_understood']
        print(f"[eval] commands that must not move it: {refused['false_accept_rate']:.1%} "
              f"moved the robot, {refused['said_not_understood_rate']:.1%} said "
              f"'not understood' ({refused['episodes']} episodes)")
        for command in refused['moved']:
            print(f'[eval]   moved on: {command!r}')
    if 'ambiguous' in summary:
        alike = summary['ambiguous']
        print(f"[eval] commands that do not say which: {alike['guessed_rate']:.1%} drove "
              f"towards a guess, {alike['said_ambiguous_rate']:.1%} said 'ambiguous' "
              f"({alike['episodes']} episodes)")
        for command in alike['guessed']:
            print(f'[eval]   guessed on: {command!r}')
    failed = [f"{template!r} ({entry['successes']}/{entry['episodes']})"
              for template, entry in summary['by_command'].items()
              if entry['successes'] < entry['episodes']]
    if failed:
        print(f'[eval] commands that failed: {", ".join(failed)}')


def perception_latency(text: str):
    """--perception-latency: None for auto, else seconds >= 0."""
    import argparse

    if text == 'auto':
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not auto or a number of seconds") from None
    if not 0.0 <= seconds < 60.0 or not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f'{seconds:g} s: give 0 to 60 seconds')
    return seconds


def add_arguments(parser):
    parser.add_argument('--mode', choices=('real', 'oracle'), default='real',
                        help='real: the deployed models; oracle: ground-truth target and intent')
    parser.add_argument('--episodes', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0, help='first scene seed')
    parser.add_argument('--output', default='runs/eval', help='folder for summary and plot')
    parser.add_argument('--max-time', type=float, default=None,
                        help='simulated seconds per episode (default 60, 300 with --world rooms)')
    parser.add_argument('--clip-model', default=None,
                        help="real mode: CLIP id or folder (default: the params file's)")
    parser.add_argument('--clipseg-model', default=None,
                        help="real mode: CLIPSeg id or folder (default: the params file's)")
    parser.add_argument('--device', default=None, choices=DEVICES,
                        help="real mode: default the params file's device")
    parser.add_argument('--backend', default=None, choices=BACKENDS,
                        help="real mode, lockstep: the models' runtime (default: the params "
                        "file's command_embedder and scene_segmenter backend)")
    parser.add_argument('--precision', default=None, choices=PRECISIONS,
                        help="with the openvino backend: default (bf16 where the CPU has it), "
                        "f32, or int8 (VNNI or AMX CPUs) (default: the params file's)")
    parser.add_argument('--transport', choices=('lockstep', 'dds'), default='lockstep',
                        help='lockstep: the pipeline objects in this process, one control '
                        'period at a time (deterministic); dds: the four nodes as separate '
                        'processes on simulated time, as sim.launch.py starts them (real '
                        'mode; logs in OUTPUT/logs)')
    parser.add_argument('--params-file', default=None,
                        help='the stack YAML whose values the pipeline runs with (default: '
                        'the installed config/vla.yaml)')
    parser.add_argument('--no-verify', dest='verify', action='store_false',
                        help="real mode: act on CLIPSeg's regions without the CLIP's check")
    parser.add_argument('--commands', default=None, metavar='FILE',
                        help="real mode: draw each episode's command from FILE instead of "
                        '"go to the {object}": YAML {go_to: [templates with {object}], '
                        'not_understood: [commands that must not move the robot]} or text, '
                        'one per line; the summary reports success per command')
    parser.add_argument('--task', choices=('goto', 'motion', 'sequence', 'relations'),
                        default='goto',
                        help='goto: "go to the <colour> <shape>" (the default); motion: '
                        'measured motions ("go forward 1.5 meters", "turn right 90 '
                        'degrees"), real mode, lockstep, success within 10 %% of a distance '
                        'or 10 degrees of an angle; sequence: commands of 2-3 steps ("go to '
                        'the red ball, then the blue cube"), the arena, success when every '
                        'step arrived at its thing in order; relations: which of 2-3 alike '
                        '("the left red ball", "the nearest cube", "the red ball next to the '
                        'blue cube"), success at the one the relation picks; with --commands '
                        'test/data/ambiguous_commands.yaml, commands that do not say which')
    parser.add_argument('--world', choices=('arena', 'rooms'), default='arena',
                        help='arena: one open room, the target found by turning on the spot '
                        '(the default); rooms: 2-4 rooms with doorways and furniture, the '
                        'target mostly in another room than the start')
    parser.add_argument('--clutter', type=int, default=0, metavar='N',
                        help='N boxes and walls in each scene, two of three across the way '
                        "to the target (the scene is otherwise the seed's usual one)")
    parser.add_argument('--perception-latency', type=perception_latency, default=None,
                        metavar='auto|SECONDS',
                        help='lockstep: how long the segmenter is busy with a frame before '
                        'its result arrives (auto, the default: 1 / its max_rate_hz or the '
                        "model's measured time, whichever is longer); the tracker follows "
                        'the target on every camera frame meanwhile')
    parser.add_argument('--no-fovea', dest='fovea', action='store_false',
                        help='real mode: segment the whole frame only, without the 2x look '
                             'at its middle')
