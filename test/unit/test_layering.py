"""The layering: vla_ros/core (what runs on the robot) imports neither rclpy nor the simulator;
the simulator (vla_ros/sim) imports neither rclpy nor the nodes nor the evaluator; the
evaluator sits above both; nothing under vla_ros/core, /nodes, /sim or /evaluation imports the
commands; no module reaches into rclpy's private attributes.
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
    paths = [path for folder in ('core', 'nodes', 'sim', 'evaluation')
             for path in (package / folder).rglob('*.py')]
    assert not imports(paths, ('vla_ros.commands',))


def test_the_simulator_imports_neither_rclpy_nor_the_nodes_nor_the_evaluator():
    paths = sorted((CORE.parent / 'sim').rglob('*.py'))
    assert paths
    offenders = imports(paths, ('rclpy', 'vla_ros.nodes', 'vla_ros.evaluation'))
    assert not offenders, f'the simulator depends on what sits above it: {offenders}'


def test_no_module_reaches_into_rclpy_private_attributes():
    """`node._parameters`, `self._state_machine`, `node._set_parameters_atomically_common`:
    names rclpy does not promise to keep. A node's own private names (self._lock) are fine.
    """
    import rclpy.lifecycle
    import rclpy.node

    private = {name for cls in (rclpy.node.Node, rclpy.lifecycle.LifecycleNode)
               for name in dir(cls) if name.startswith('_') and not name.startswith('__')}
    private |= {name for name in vars(rclpy.node.Node('layering_probe', context=_context()))
                if name.startswith('_') and not name.startswith('__')}
    offenders = []
    for path in sorted((CORE.parent).rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in private:
                offenders.append(f'{path.relative_to(CORE.parent)}:{node.lineno} .{node.attr}')
    assert not offenders, f'private rclpy attributes used: {offenders}'


def _context():
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    return context


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


def test_the_simulator_bridge_starts_without_the_model_libraries():
    """sim_bridge runs no model: its process must not pay for importing torch."""
    code = ('import sys\nimport vla_ros.nodes.sim_bridge\n'
            "print(any(name.split('.')[0] in ('torch', 'transformers', 'openvino') "
            'for name in sys.modules))\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip().splitlines()[-1] == 'False'


def test_the_command_line_parses_without_the_model_libraries():
    """`vla-ros --help`, a typo or a bad option answer at once: the commands import torch,
    transformers and the simulator only when they run.
    """
    code = ('import sys\nfrom vla_ros.commands.main import build_parser\nbuild_parser()\n'
            "print(sorted({name.split('.')[0] for name in sys.modules} & {'torch', "
            "'transformers', 'openvino', 'mujoco', 'rclpy'}))\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip().splitlines()[-1] == '[]'
