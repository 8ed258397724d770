"""`vla-ros demo`: the closed loop over DDS, bridge + policy, in oracle mode while no models."""

import json
import subprocess
import sys

from vla_ros.core import paths


def test_demo_drives_to_the_named_object_and_leaves_pictures(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'demo', '--seed', '1', '--mode', 'oracle',
         '--timeout', '45', '--output', str(tmp_path), '--cache-dir', str(tmp_path / 'cache')],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'approaching orange capsule' in result.stdout
    folder = tmp_path / 'seed-1'
    summary = json.loads((folder / 'summary.json').read_text())
    assert summary['outcome'] == 'success', summary
    assert summary['statuses'][-1] in ('arrived', 'stopped: shutdown')
    assert (folder / 'episode.gif').stat().st_size > 50_000
    assert (folder / 'trajectory.png').stat().st_size > 5_000


def test_auto_mode_says_which_mode_it_chose(tmp_path):
    models_present = (paths.default_model_dir('clip') / 'config.json').is_file()
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'demo', '--seed', '2', '--timeout', '1',
         '--output', str(tmp_path), '--cache-dir', str(tmp_path / 'cache')],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ('ORACLE mode' in result.stdout) != models_present
    assert json.loads((tmp_path / 'seed-2' / 'summary.json').read_text())['outcome']
