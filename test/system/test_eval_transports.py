"""`vla-ros eval` both ways on the same seed: the pipeline objects in lockstep, and the four
nodes as separate processes over DDS on simulated time. Both score the embedded models.
"""

import json
import subprocess
import sys

import pytest

from vla_ros.core import paths
from vla_ros.core.models import resolve_backend, resolve_device

SEED = 5  # a short episode: about 7 simulated seconds


def evaluate(tmp_path, transport):
    output = tmp_path / transport
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'eval', '--mode', 'real', '--episodes', '1',
         '--seed', str(SEED), '--transport', transport, '--output', str(output)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads((output / 'summary.json').read_text()), output, result.stdout


@pytest.mark.skipif(not (paths.default_model_dir('clipseg') / 'config.json').is_file(),
                    reason='needs the embedded models in models/')
def test_the_same_seed_over_dds_and_in_lockstep(tmp_path):
    lockstep, _, _ = evaluate(tmp_path, 'lockstep')
    dds, output, stdout = evaluate(tmp_path, 'dds')
    assert lockstep['transport'] == 'lockstep' and dds['transport'] == 'dds'
    # Lockstep runs the models on the backend the params file gives the nodes (auto).
    expected = resolve_backend('auto', resolve_device('auto'))
    runtimes = lockstep['runtimes']
    assert runtimes['commands'].startswith(expected), runtimes
    assert runtimes['segmentation'].startswith(expected), runtimes
    assert runtimes['intents'].startswith('torch'), runtimes  # as action_policy runs them
    for summary in (lockstep, dds):
        episode = summary['episodes'][0]
        assert episode['outcome'] == 'success', episode
        assert episode['statuses'][-1] == 'arrived'
        assert any(status.startswith('approaching') for status in episode['statuses'])
    # The nodes ran as processes: each wrote its log, said it was ready and exited on Ctrl-C.
    logs = output / 'logs' / f'seed-{SEED}'
    for name in ('command_embedder', 'camera_embedder', 'scene_segmenter', 'action_policy'):
        text = (logs / f'{name}.log').read_text()
        assert 'ready' in text and 'Traceback' not in text, name
    assert 'did not exit cleanly' not in stdout
    assert dds['episodes'][0]['perception_ms_p50'] > 0  # from the segmenter's /diagnostics
