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


SHIPPED_KWS = os.path.join(REPO, 'checkpoints', 'kws_2d.weights.h5')
SHIPPED_NULL = os.path.join(REPO, 'checkpoints', 'kws_2d.null.h5')


def _run(args, tmp_path, checkpoint_dir=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    if checkpoint_dir is not None:
        env['MODEL_METAMERS_CHECKPOINT_DIR'] = str(checkpoint_dir)
    run = subprocess.run([sys.executable, os.path.join(REPO, 'run_generation.py')] + args
                         + ['--output_dir=%s' % tmp_path], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_demo_without_any_weights_writes_the_output_contract(tmp_path):
    empty = tmp_path / 'no_checkpoints'
    empty.mkdir()
    out = _run(['--demo', '--iterations=6', '--log_every=3', '--figures=false'], tmp_path, empty)
    assert 'demo: word_reduced_aliasing, weights=random' in out
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


@pytest.mark.skipif(not os.path.exists(SHIPPED_KWS), reason='checkpoints/kws_2d.weights.h5 is not here')
def test_demo_runs_the_shipped_trained_kws_2d(tmp_path):
    """A checkout as shipped: the demo is the trained keyword network on the spoken "yes"."""
    shipped = tmp_path / 'checkpoints'
    shipped.mkdir()
    os.symlink(SHIPPED_KWS, str(shipped / 'kws_2d.weights.h5'))
    os.symlink(SHIPPED_NULL, str(shipped / 'kws_2d.null.h5'))
    out = _run(['--demo', '--iterations=6', '--log_every=3', '--figures=false'], tmp_path, shipped)
    assert 'demo: kws_2d, weights=%s, layers conv_1,fc_intermediate' % (shipped / 'kws_2d.weights.h5') in out
    with h5py.File(str(tmp_path / 'kws_2d' / 'demo_keyword_yes.h5'), 'r') as f:
        assert sorted(f.keys()) == ['conv_1', 'fc_intermediate']
        group = f['fc_intermediate']
        assert group['metamer'].shape == (16000,) and int(group.attrs['iterations']) == 6
        # The trained network hears the natural "yes" as "yes".
        assert group.attrs['natural_class_name'] in ('yes', b'yes')
        # ... and validates by the paper's criterion against the shipped null
        null_max = {layer: float(f[layer].attrs['null_max']) for layer in f}
        assert 'null max' in str(group.attrs['criterion'])
    with h5py.File(SHIPPED_NULL, 'r') as f:
        for layer, value in null_max.items():
            assert value == pytest.approx(float(np.max(f[layer]['spearman'][()])))
    rows = [line.split() for line in out.splitlines() if line.startswith('demo_keyword_yes')]
    assert sorted(row[1] for row in rows) == ['conv_1', 'fc_intermediate']
    for row in rows:  # the summary shows rho beside the null's maximum
        assert row[4] == '%.4f' % null_max[row[1]], out


def test_demo_prefers_a_converted_paper_network(tmp_path, monkeypatch):
    from model_metamers import demo
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', str(tmp_path))
    assert demo.demo_settings()['weights'] == 'random'
    (tmp_path / 'kws_2d.weights.h5').write_bytes(b'')
    assert demo.demo_settings()['network'] == 'kws_2d'
    assert all(isinstance(d['iterations'], int) for d in demo.DEMOS + (demo.DEMO_FALLBACK,))
    (tmp_path / 'word_reduced_aliasing.weights.h5').write_bytes(b'')
    chosen = demo.demo_settings()
    assert chosen['network'] == 'word_reduced_aliasing'
    assert chosen['weights'] == str(tmp_path / 'word_reduced_aliasing.weights.h5')


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
