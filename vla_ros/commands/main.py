"""The `vla-ros` command (also `python -m vla_ros`)."""

import argparse
import importlib
import sys

# name (module vla_ros.commands.<name with _>, with add_arguments), function, help
COMMANDS = (
    ('up', 'run_up',
     'run the four nodes in one process, configured like vla.launch.py'),
    ('demo', 'run_demo',
     'the closed loop in the simulator: a sentence in, the robot drives'),
    ('eval', 'run_eval',
     'run seeded "go to the <colour> <shape>" episodes in the simulator'),
    ('replay', 'run_replay',
     'run the perception pipeline and the policy on the camera frames of a rosbag2'),
    ('dataset', 'run_dataset',
     'render seeded training views of simulator scenes (for the models)'),
    ('train', 'run_train',
     'train the embedded CLIP or CLIPSeg on rendered views (resumable)'),
    ('eval-models', 'run_measure',
     'measure the embedded models: retrieval, zero-shot, intents, masks, speed'),
    ('smoke', 'run_smoke', 'start the four nodes, send a generated frame and a command, '
     'print what they published'),
)


def build_parser():
    parser = argparse.ArgumentParser(prog='vla-ros', description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    for name, function, text in COMMANDS:
        module = importlib.import_module(f'vla_ros.commands.{name.replace("-", "_")}')
        command = commands.add_parser(name, help=text)
        module.add_arguments(command)
        command.set_defaults(run=getattr(module, function))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
