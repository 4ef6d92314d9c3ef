"""run_generation.py end to end on the real reduced-aliasing network and the demo sound.

The quick test runs the demo configuration for a handful of iterations and checks the output
contract; the slow one (``pytest -m slow``) is the synthesis issue's acceptance check: the metamer of
the demo sound at ``pool_0_0`` of the untrained network passes Spearman rho 0.99 at that layer with
the CLI's default learning rate.
"""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.conftest import REPO

# Iterations of the acceptance run: the rho curve measured for the demo sound at lr 0.001 is in
# BUILD_NOTES.md (Synthesis); it passes 0.99 at 1200 iterations (0.99007), so 2000 leaves a margin.
ACCEPTANCE_ITERATIONS = int(os.environ.get('MODEL_METAMERS_ACCEPTANCE_ITERATIONS', '2000'))


def _run(args, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    run = subprocess.run([sys.executable, os.path.join(REPO, 'run_generation.py')] + args
                         + ['--output_dir=%s' % tmp_path], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_demo_writes_the_output_contract(tmp_path):
    out = _run(['--demo', '--iterations=6', '--log_every=3', '--figures=false'], tmp_path)
    assert 'demo: word_reduced_aliasing' in out
    folder = tmp_path / 'word_reduced_aliasing'
    h5_path = folder / 'human_audio_resampled.h5'
    assert h5_path.exists()
    with h5py.File(str(h5_path), 'r') as f:
        assert sorted(f.keys()) == ['conv_2', 'pool_0_0']
        for layer in ('pool_0_0', 'conv_2'):
            group = f[layer]
            assert group['metamer'].shape == (40000,)
            assert group['natural'].shape == (40000,)
            assert int(group.attrs['iterations']) == 6
            rho = float(group.attrs['spearman_matched'])
            assert -1.0 <= rho <= 1.0
            loss = np.asarray(group['loss'])
            # Six Adam steps from noise already lower the matching loss.
            assert loss[-1] < loss[0]
    for layer in ('pool_0_0', 'conv_2'):
        assert (folder / ('human_audio_resampled_%s.wav' % layer)).exists()
    # The summary table names both layers.
    assert 'pool_0_0' in out and 'conv_2' in out


@pytest.mark.slow
def test_acceptance_pool_0_0_of_the_random_network(tmp_path):
    _run(['--network=word_reduced_aliasing_random', '--layer=pool_0_0',
          '--iterations=%d' % ACCEPTANCE_ITERATIONS, '--log_every=500', '--figures=false'],
         tmp_path)
    path = tmp_path / 'word_reduced_aliasing_random' / 'human_audio_resampled.h5'
    with h5py.File(str(path), 'r') as f:
        rho = float(f['pool_0_0'].attrs['spearman_matched'])
    assert rho > 0.99, 'Spearman rho at pool_0_0 is %.5f after %d iterations' % (
        rho, ACCEPTANCE_ITERATIONS)
