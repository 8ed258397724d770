"""The commands a person runs, run the way a person runs them."""

import re
import subprocess
import sys


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, '-m', 'vla_ros', *args], capture_output=True,
                          text=True, timeout=timeout)


def test_smoke_prints_what_the_pipeline_produced(tmp_path):
    result = run_cli('smoke', '--cache-dir', str(tmp_path / 'cache'), '--device', 'cpu',
                     '--output', str(tmp_path / 'out'))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # Text and image embeddings share CLIP's joint space (the embedded or the stand-in model).
    text_dim = re.search(r'/vla/text_embedding: Float32MultiArray, dim (\d+)', out)
    image_dim = re.search(r'/vla/image_embedding: Float32MultiArray, dim (\d+)', out)
    assert text_dim and image_dim and text_dim.group(1) == image_dim.group(1)
    views = re.search(r'/vla/view_embeddings: Float32MultiArray, (\d+) x dim (\d+)', out)
    assert views and views.groups() == ('3', text_dim.group(1))  # view_tiles' default
    assert "/vla/segmentation/mask: Image mono8 320x240, frame_id 'smoke_camera'" in out
    assert '/vla/target: PointStamped' in out
    assert '/vla/status: String ' in out
    assert '/cmd_vel: Twist linear.x' in out
    assert 'NOTHING' not in out
    assert (tmp_path / 'out' / 'overlay.png').stat().st_size > 1000


def test_unknown_subcommand_fails_with_usage():
    result = run_cli('fly')
    assert result.returncode == 2
    assert 'usage: vla-ros' in result.stderr
