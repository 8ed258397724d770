"""colcon-facing metadata: package.xml, setup.py entry points and data files, lint."""

from pathlib import Path
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
import setuptools  # noqa: F401 - installs the distutils shim run_setup comes from

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def distribution():
    import distutils.core
    return distutils.core.run_setup(str(ROOT / 'setup.py'), stop_after='config')


def test_package_xml_is_format_3_ament_python():
    root = ElementTree.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'vla_ros'
    assert root.find('export/build_type').text == 'ament_python'
    depends = {element.text for element in root if element.tag.endswith('depend')}
    for key in ('rclpy', 'std_msgs', 'sensor_msgs', 'geometry_msgs', 'std_srvs',
                'diagnostic_msgs', 'cv_bridge', 'launch_ros', 'python3-torch',
                'python3-transformers-pip', 'python3-opencv'):
        assert key in depends, f'package.xml lacks the rosdep key {key}'


def test_versions_agree(distribution):
    root = ElementTree.parse(ROOT / 'package.xml').getroot()
    assert distribution.get_version() == root.findtext('version')
    assert distribution.get_name() == root.findtext('name')


def test_entry_points_are_declared(distribution):
    scripts = distribution.entry_points['console_scripts']
    names = {line.split('=')[0].strip(): line.split('=')[1].strip() for line in scripts}
    assert names['vla-ros'] == 'vla_ros.commands.main:main'
    for node in ('camera_embedder', 'command_embedder', 'scene_segmenter', 'action_policy'):
        assert names[node] == f'vla_ros.nodes.{node}:main'
    for target in names.values():
        module, function = target.split(':')
        assert callable(getattr(__import__(module, fromlist=[function]), function))


def test_data_files_install_the_share_tree(distribution):
    installed = {}
    for folder, files in distribution.data_files:
        for name in files:
            installed[name] = folder
    assert installed['resource/vla_ros'] == 'share/ament_index/resource_index/packages'
    assert installed['package.xml'] == 'share/vla_ros'
    for tracked in ('config', 'launch', 'models'):
        for path in (ROOT / tracked).rglob('*'):
            if path.is_file() and not path.name.startswith('.'):
                relative = str(path.relative_to(ROOT))
                assert installed.get(relative) == str(Path('share/vla_ros', relative).parent)


def test_setup_cfg_puts_executables_where_ros2_run_looks():
    text = (ROOT / 'setup.cfg').read_text()
    assert 'script_dir=$base/lib/vla_ros' in text
    assert 'install_scripts=$base/lib/vla_ros' in text
    assert (ROOT / 'resource' / 'vla_ros').is_file()


def test_lint_ament_style():
    ruff = shutil.which('ruff', path=str(Path(sys.executable).parent)) or shutil.which('ruff')
    assert ruff, 'ruff is not installed (requirements.txt installs it)'
    result = subprocess.run([ruff, 'check', '--output-format', 'concise', str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
