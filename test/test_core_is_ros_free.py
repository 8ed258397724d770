"""vla_ros/core must run without ROS: no module below it may import rclpy."""

import ast
from pathlib import Path
import subprocess
import sys

CORE = Path(__file__).resolve().parents[1] / 'vla_ros' / 'core'


def core_modules():
    return sorted(CORE.rglob('*.py'))


def test_no_rclpy_import_statement_in_core():
    offenders = []
    for path in core_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f'{path.name}:{node.lineno} {name}' for name in names
                          if name.split('.')[0] == 'rclpy']
    assert core_modules(), 'no core modules found'
    assert not offenders, f'core imports rclpy: {offenders}'


def test_importing_all_of_core_does_not_load_rclpy():
    """Catches indirect imports too (a dependency that pulls rclpy in)."""
    modules = ['vla_ros.core.' + '.'.join(path.relative_to(CORE).with_suffix('').parts)
               for path in core_modules() if path.name != '__init__.py']
    code = ('import importlib, sys\n'
            f'for name in {modules!r}: importlib.import_module(name)\n'
            "print('rclpy' in sys.modules)\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip().splitlines()[-1] == 'False'
