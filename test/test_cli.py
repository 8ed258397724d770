"""The commands a person runs, run the way a person runs them."""

import subprocess
import sys


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, '-m', 'vla_ros', *args], capture_output=True,
                          text=True, timeout=timeout)


def test_smoke_prints_what_the_pipeline_produced(tmp_path):
    result = run_cli('smoke', '--cache-dir', str(tmp_path), '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'image_embedding: dim 16, norm 1.0000' in out
    assert 'text_embedding: dim 16, norm 1.0000' in out
    assert "mask for 'red ball': 320x240" in out


def test_unknown_subcommand_fails_with_usage():
    result = run_cli('fly')
    assert result.returncode == 2
    assert 'usage: vla-ros' in result.stderr
