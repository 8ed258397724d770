"""The command path's latency, against the bare text-encoder call in the same run.

    python benchmarks/command_path.py [--model ''] [--repeats 3]

Over the held-out lists in test/data (go-to phrasings with "red ball", and commands that must
not move the robot), in turns, each command:
  encode    the CLIP text encoder alone (the baseline; the command_embedder's work),
  grammar   clean_command + parse_command (core.text) alone,
  path      what the stack does once per command: clean, encode, then the policy's
            Controller.instruct (grammar, intent choice, refusal rules).
Prints p50/p95 and ratios to the baseline, writes JSON (--output).
"""

import argparse
import json
import os
from pathlib import Path
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

DATA = Path(__file__).parents[1] / 'test' / 'data'


def commands() -> list:
    go_to = yaml.safe_load((DATA / 'go_to_phrasings.yaml').read_text())['go_to']
    refused = yaml.safe_load((DATA / 'refused_commands.yaml').read_text())['not_understood']
    return [template.replace('{object}', 'red ball') for template in go_to] + list(refused)


def percentiles(seconds) -> dict:
    values = 1e3 * np.asarray(seconds)
    return {'p50_ms': float(np.percentile(values, 50)), 'p95_ms': float(np.percentile(values, 95))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='', help="CLIP id or folder ('' = embedded)")
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads (the node '
                        'default cpu_threads is 1)')
    parser.add_argument('--output', default=str(Path(__file__).parent / 'results' /
                                                 'command_path.json'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vla_ros.core import paths
    from vla_ros.core.control import Controller
    from vla_ros.core.encoders import ClipEncoder
    from vla_ros.core.models import load_model
    from vla_ros.core.text import clean_command, parse_command
    from vla_ros.evaluation.lockstep import StackSettings

    settings = StackSettings.from_params_file(paths.SOURCE_ROOT / 'config' / 'vla.yaml')
    encoder = ClipEncoder(load_model('clip', args.model, device='cpu'))
    controller = Controller.from_encoder(settings.intents, encoder.encode_texts,
                                         settings.control)
    texts = [clean_command(command)[0] for command in commands()]
    texts = [text for text in texts if text]
    encoder.encode_texts(texts[:4])  # warm-up
    times = {'encode': [], 'grammar': [], 'path': []}
    for repeat in range(args.repeats):
        for command in commands():
            started = time.perf_counter()
            text = clean_command(command)[0]
            parse_command(text)
            times['grammar'].append(time.perf_counter() - started)
            if not text:
                continue
            started = time.perf_counter()
            encoder.encode_texts([text])
            times['encode'].append(time.perf_counter() - started)
            started = time.perf_counter()
            text = clean_command(command)[0]
            controller.instruct(encoder.encode_texts([text])[0], text, float(repeat))
            times['path'].append(time.perf_counter() - started)
        print(f'[command_path] pass {repeat + 1}/{args.repeats}', flush=True)
    results = {name: percentiles(values) for name, values in times.items()}
    baseline = results['encode']['p50_ms']
    print(f'{len(texts)} commands x {args.repeats}, model {encoder.name}, '
          f'{args.threads} thread(s)')
    print('| step | p50 | p95 | p50 / encode p50 |\n|---|---|---|---|')
    for name, result in results.items():
        print(f"| {name} | {result['p50_ms']:.2f} ms | {result['p95_ms']:.2f} ms | "
              f"{result['p50_ms'] / baseline:.2f}x |")
    Path(args.output).write_text(json.dumps(
        {'model': encoder.name, 'threads': args.threads, 'commands': len(texts),
         'repeats': args.repeats, **results}, indent=2))
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
