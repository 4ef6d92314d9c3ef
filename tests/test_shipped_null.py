"""The null distribution that ships for the embedded kws_2d network (checkpoints/kws_2d.null.h5).

It was computed by ``model_metamers.null_distribution`` on the 800 held-out clips (test speakers)
of the spoken-word set with the shipped weights (BUILD_NOTES.md, "The embedded default"). These
tests check it belongs to those weights, covers every metamer layer, is found by
``--null_distribution=auto``, and that weights other than the ones it was made with refuse it.
"""

import os

import h5py
import numpy as np
import pytest

from model_metamers import weights_io
from model_metamers.generation import GenerationError, GenerationSettings, generate, weights_fingerprint
from model_metamers.networks import build

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(REPO, 'checkpoints', 'kws_2d.weights.h5')
NULL = os.path.join(REPO, 'checkpoints', 'kws_2d.null.h5')
# kws_2d's metamer layers (SPEC §7): the cochleagram, both convolutions, the dense layer, logits
LAYERS = ['cochleagram', 'conv_0', 'conv_1', 'fc_intermediate', 'logits']

def test_shipped_null_belongs_to_the_shipped_weights():
    with h5py.File(NULL, 'r') as f:
        attrs = dict(f.attrs)
        assert attrs['network'] == 'kws_2d'
        assert attrs['weights_sha1'] == weights_fingerprint(WEIGHTS)
        assert int(attrs['seed']) == 0 and int(attrs['num_pairs']) == 100000
        assert int(attrs['n_stimuli']) == 800
        assert sorted(f) == sorted(LAYERS)
        for layer in LAYERS:
            rho = f[layer]['spearman'][()]
            assert rho.shape == (100000,) and np.all(np.abs(rho) <= 1.0)
            assert float(f[layer].attrs['max_spearman']) == pytest.approx(float(rho.max()))
    assert os.path.getsize(NULL) < 8 * 2 ** 20  # small enough for git


def _settings(out, weights='auto'):
    return GenerationSettings(network='kws_2d', layers=['conv_1'], weights=weights, iterations=3,
                              log_every=1, output_dir=str(out), figures=False, progress=False)


def test_auto_uses_the_shipped_null_and_other_weights_refuse_it(tmp_path, monkeypatch):
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', os.path.dirname(WEIGHTS))
    said = []
    rows = generate(_settings(tmp_path / 'out'), log=said.append)
    assert 'null distribution: %s' % NULL in said
    with h5py.File(NULL, 'r') as f:
        assert rows[0]['null_max'] == pytest.approx(float(np.max(f['conv_1']['spearman'][()])))
    # the same architecture with other weights: the null is not theirs
    other = str(tmp_path / 'other.weights.h5')
    weights_io.save_weights(build('kws_2d', weights='random', seed=1).model, other,
                            attrs={'network': 'kws_2d'})
    settings = _settings(tmp_path / 'out2', weights=other)
    settings.null_distribution = NULL  # asked for by name: an error
    with pytest.raises(GenerationError, match='other weights') as error:
        generate(settings, log=lambda msg: None)
    assert len(str(error.value).splitlines()) == 1
    said = []  # found by 'auto': not used, said once, validated by the class only
    rows = generate(_settings(tmp_path / 'out3', weights=other), log=said.append)
    assert [line for line in said if line.startswith('not using %s' % NULL)]
    assert np.isnan(rows[0]['null_max'])
