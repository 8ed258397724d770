"""The layering: vla_ros/core (what runs on the robot) imports neither rclpy nor the simulator,
and nothing under vla_ros/core, /nodes or /sim imports the commands.
"""

import ast
from pathlib import Path
import subprocess
import sys

CORE = Path(__file__).resolve().parents[2] / 'vla_ros' / 'core'


def core_modules():
    return sorted(CORE.rglob('*.py'))


def imports(paths, forbidden):
    """'file:line module' for each import statement in `paths` of a module under `forbidden`."""
    offenders = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f'{path.name}:{node.lineno} {name}' for name in names
                          if any(name == bad or name.startswith(bad + '.')
                                 for bad in forbidden)]
    return offenders


def test_core_imports_neither_rclpy_nor_the_simulator():
    assert core_modules(), 'no core modules found'
    offenders = imports(core_modules(), ('rclpy', 'vla_ros.sim', 'mujoco', 'vla_ros.nodes',
                                         'vla_ros.commands', 'vla_ros.fixtures'))
    assert not offenders, f'core imports what the robot does not run: {offenders}'


def test_robot_and_simulator_code_never_import_the_commands():
    package = CORE.parent
    paths = [path for folder in ('core', 'nodes', 'sim') for path in (package / folder).rglob(
        '*.py')]
    assert not imports(paths, ('vla_ros.commands',))


def test_importing_all_of_core_loads_neither_rclpy_nor_the_simulator():
    """Catches indirect imports too (a dependency that pulls rclpy in)."""
    modules = ['vla_ros.core.' + '.'.join(path.relative_to(CORE).with_suffix('').parts)
               for path in core_modules() if path.name != '__init__.py']
    code = ('import importlib, sys\n'
            f'for name in {modules!r}: importlib.import_module(name)\n'
            "print(any(name.split('.')[0] in ('rclpy', 'mujoco') or name.startswith("
            "'vla_ros.sim') for name in sys.modules))\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip().splitlines()[-1] == 'False'
