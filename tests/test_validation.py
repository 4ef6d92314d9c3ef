"""Spearman rho and the pass criterion of SPEC §5."""

import h5py
import numpy as np
import pytest
import scipy.stats

from model_metamers import validation
from tests.test_synthesis import natural_images, toy_network


@pytest.mark.parametrize('seed', range(5))
def test_spearman_equals_scipy_including_ties(seed):
    rng = np.random.RandomState(seed)
    a = rng.randn(500)
    b = a + rng.randn(500)
    # ReLU-like activations: many exact zeros (ties).
    a[rng.rand(500) < 0.4] = 0
    b[rng.rand(500) < 0.3] = 0
    b[:50] = np.round(b[:50], 1)
    expected = scipy.stats.spearmanr(a, b).correlation
    assert validation.spearman(a, b) == pytest.approx(expected, abs=1e-12)
    assert validation.spearman(a.reshape(20, 25), b.reshape(25, 20)) == pytest.approx(expected, abs=1e-12)


def test_constant_activations_give_zero():
    assert validation.spearman(np.zeros(10), np.arange(10)) == 0.0


def _null_file(path, layer_values):
    with h5py.File(path, 'w') as f:
        for layer, values in layer_values.items():
            f.create_group(layer).create_dataset('spearman', data=np.asarray(values))
    return str(path)


def test_pass_criterion_with_a_hand_made_null(tmp_path):
    net = toy_network()
    nat = natural_images(2)
    # Metamer 0 is the natural stimulus itself (rho 1, same class); metamer 1 is noise.
    metamers = np.stack([nat[0], np.random.RandomState(9).rand(48).astype(np.float32)])
    low = _null_file(tmp_path / 'low.h5', {'relu1': [0.1, 0.2, 0.3], 'relu2': [0.0], 'logits': [0.5]})
    high = _null_file(tmp_path / 'high.h5', {'relu1': [0.2, 1.0], 'relu2': [0.0], 'logits': [0.5]})
    res = validation.validate(net, nat, metamers, 'relu1', null=low)
    assert res[0].spearman_matched == pytest.approx(1.0)
    assert res[0].same_class and res[0].passed and res[0].null_max == pytest.approx(0.3)
    nat_logits = net.logits(nat).numpy()
    met_logits = net.logits(metamers).numpy()
    assert res[1].same_class == (np.argmax(nat_logits[1]) == np.argmax(met_logits[1]))
    assert res[1].spearman_matched == pytest.approx(scipy.stats.spearmanr(
        net.activations(nat[1:], ['relu1'])['relu1'].numpy().ravel(),
        net.activations(metamers[1:], ['relu1'])['relu1'].numpy().ravel()).correlation, abs=1e-9)
    # rho must be strictly above the null's maximum: a perfect copy fails a null reaching 1.
    res_high = validation.validate(net, nat[:1], metamers[:1], 'relu1', null=high)
    assert res_high[0].spearman_matched == pytest.approx(1.0) and res_high[0].same_class
    assert not res_high[0].passed
    assert set(res[0].spearman_layers) == {'relu1', 'relu2', 'logits'}
    # Without a null only the class criterion is available, and the result says so.
    plain = validation.validate(net, nat, metamers, 'relu1')
    assert plain[0].passed and 'no null' in plain[0].criterion and np.isnan(plain[0].null_max)


def test_null_without_the_layer_is_an_error(tmp_path):
    path = _null_file(tmp_path / 'n.h5', {'relu2': [0.1]})
    with pytest.raises(ValueError, match='no layer'):
        validation.validate(toy_network(), natural_images(1), natural_images(1), 'relu1', null=path)
    empty = tmp_path / 'empty.h5'
    h5py.File(empty, 'w').close()
    with pytest.raises(ValueError, match='no null'):
        validation.load_null(str(empty))
    not_hdf5 = tmp_path / 'sound.wav'
    not_hdf5.write_bytes(b'RIFF....WAVE')
    for path in (not_hdf5, tmp_path / 'missing.h5'):
        with pytest.raises(ValueError, match='cannot read the null distribution .*written by python -m '
                                             'model_metamers.null_distribution'):
            validation.load_null(str(path))


# The paper's rule (§3.1: rho above the largest null rho, same class), written out here
# rather than taken from the code: (same class, rho, null max) -> passes.
@pytest.mark.parametrize('same, rho, null_max, expected', [
    (True, 0.51, 0.5, True),
    (True, 0.5, 0.5, False),     # a tie with the null's maximum is not "above" it
    (True, 0.49, 0.5, False),
    (False, 0.99, 0.5, False),   # another class never passes
    (None, 0.51, 0.5, True),     # a network without classes: rho alone decides
    (None, 0.5, 0.5, False),
    (True, float('nan'), 0.5, False),
])
def test_pass_rule(same, rho, null_max, expected):
    assert validation.passes(same, rho, null_max) is expected


# The 2023 rule (SPEC §9; 2023's print_null_dist): same class and Spearman, Pearson and dB SNR
# each at least the null's maximum; a tie passes there, one measure below fails.
@pytest.mark.parametrize('same, measures, expected', [
    (True, (0.9, 0.9, 10.0), True),
    (True, (0.5, 0.5, 3.0), True),       # each equal to its maximum
    (True, (0.9, 0.49, 10.0), False),
    (True, (0.9, 0.9, 2.9), False),
    (True, (0.49, 0.9, 10.0), False),
    (False, (0.9, 0.9, 10.0), False),
    (None, (0.9, 0.9, 10.0), True),
])
def test_pass_rule_2023(same, measures, expected):
    names = ('spearman', 'pearson', 'snr_db_2023')
    thresholds = dict(zip(names, (0.5, 0.5, 3.0)))
    assert validation.passes_2023(same, dict(zip(names, measures)), thresholds) is expected


def test_reports_count_passes_with_the_same_rule():
    """reports.layer_table recounts 'passed' against a null; a rho tying the null's maximum fails there too."""
    from model_metamers import reports
    records = [{'layer': 'relu1', 'spearman_matched': rho, 'same_class': same, 'passed': True, 'rho': {}}
               for rho, same in [(0.5, b'True'), (0.6, b'True'), (0.6, b'False'), (0.7, b'none')]]
    row, = reports.layer_table(records, ['relu1'], null={'relu1': np.array([0.1, 0.5])})
    # 0.5 ties the maximum (fails), 0.6 same class passes, other class fails, no classes + 0.7 passes.
    assert row['passed'] == 2 and row['generated'] == 4


def test_a_network_may_bring_its_own_class_criterion_or_have_none(tmp_path):
    net = toy_network()
    nat = natural_images(2)
    null = _null_file(tmp_path / 'n.h5', {'relu1': [0.5]})
    # A custom criterion (DeepSpeech's same transcript) is asked once per stimulus, on its logits.
    seen = []

    def never_same(nat_logits, met_logits):
        seen.append(nat_logits.shape)
        return False, 'natural words', 'metamer words'
    net.info['same_class'] = never_same
    res = validation.validate(net, nat, nat, 'relu1', null=null)
    assert seen == [(4,), (4,)]
    assert [(r.same_class, r.natural_class, r.metamer_class, r.passed) for r in res] == \
        [(False, 'natural words', 'metamer words', False)] * 2
    # Without classes, rho alone decides and the criterion says so.
    del net.info['same_class']
    net.info['has_classes'] = False
    res = validation.validate(net, nat, nat, 'relu1', null=null)
    assert [(r.same_class, r.passed) for r in res] == [(None, True)] * 2
    assert 'no classes' in res[0].criterion


def test_groups_without_a_spearman_dataset_are_not_layers_of_the_null(tmp_path):
    path = str(tmp_path / 'n.h5')
    with h5py.File(path, 'w') as f:
        f.create_group('relu1').create_dataset('spearman', data=[0.1, 0.4])
        f.create_group('relu2').create_dataset('pearson', data=[0.2])
        f.create_dataset('notes', data=[1.0])
    null = validation.load_null(path)
    assert list(null) == ['relu1'] and np.max(null['relu1']) == pytest.approx(0.4)


# ------------------------------------------------------------------ issue 25, fourth mutation pass
def test_cochleagram_metamers_are_measured_from_the_cochleagram_on():
    from tests.test_synthesis import coch_toy_network
    net = coch_toy_network()
    rng = np.random.RandomState(3)
    nat = np.maximum(rng.randn(2, 24), 0).astype(np.float32)  # cochleagrams, not waveforms
    met = np.maximum(nat + 0.5 * rng.randn(2, 24), 0).astype(np.float32)
    res = validation.validate(net, nat, met, 'relu2', layers=['input', 'cochleagram', 'relu2'],
                              from_stage='cochleagram')
    # The waveform stage before the cochleagram is not computed from it; the logits are added.
    assert list(res[0].spearman_layers) == ['cochleagram', 'relu2', 'logits']
    for k in range(2):
        assert res[k].spearman_layers['cochleagram'] == pytest.approx(
            scipy.stats.spearmanr(nat[k], met[k]).correlation, abs=1e-9)
        relu2 = [net.activations(x[k:k + 1], ['relu2'], from_stage='cochleagram')['relu2'].numpy().ravel()
                 for x in (nat, met)]
        assert res[k].spearman_matched == pytest.approx(scipy.stats.spearmanr(*relu2).correlation, abs=1e-9)
    default = validation.validate(net, nat, met, 'relu2', from_stage='cochleagram')
    assert list(default[0].spearman_layers) == ['cochleagram', 'relu2', 'logits']


def test_a_null_is_found_under_the_stage_name_or_the_alias_asked_for():
    net = toy_network()
    net.aliases['first_relu'] = 'relu1'
    nat = natural_images(1)
    by_stage = validation.validate(net, nat, nat, 'first_relu', null={'relu1': np.array([0.2, 0.3])})
    by_alias = validation.validate(net, nat, nat, 'first_relu', null={'first_relu': np.array([0.4])})
    assert by_stage[0].null_max == pytest.approx(0.3) and by_alias[0].null_max == pytest.approx(0.4)
    assert validation.null_threshold({'relu1': np.array([0.1, 0.6])}, net, 'first_relu') == pytest.approx(0.6)
    assert np.isnan(validation.null_threshold(None, net, 'relu1'))
    with pytest.raises(ValueError, match="no layer 'relu2' \\(it has relu1\\)"):
        validation.null_threshold({'relu1': np.array([0.1])}, net, 'relu2')


def test_without_a_null_a_network_without_classes_passes_nothing():
    net = toy_network()
    net.info['has_classes'] = False
    nat = natural_images(2)
    for criterion in ('feather2019', 'feather2023'):
        res = validation.validate(net, nat, nat, 'relu1', criterion=criterion)
        assert [(r.same_class, r.passed) for r in res] == [(None, False)] * 2
        assert all('no null' in r.criterion and np.isnan(r.null_max) for r in res)


def test_the_2023_criterion_without_a_null_is_the_class_alone():
    net = toy_network()
    nat = natural_images(2)
    other = natural_images(2, seed=8)
    res = validation.validate(net, nat, other, 'relu1', criterion='feather2023')
    classes = [[int(np.argmax(z)) for z in net.logits(x).numpy()] for x in (nat, other)]
    for k, r in enumerate(res):
        assert (r.natural_class, r.metamer_class) == (classes[0][k], classes[1][k])
        assert r.passed == (classes[0][k] == classes[1][k]) and r.procedure == 'feather2023'
        assert np.isnan(r.null_max) and np.isnan(r.null_max_pearson) and np.isnan(r.null_max_snr_db)
        assert 'no null' in r.criterion and 'argmax' in r.class_task
    with pytest.raises(ValueError, match='unknown validation criterion .*feather2019 or feather2023'):
        validation.validate(net, nat, nat, 'relu1', criterion='feather2021')
    with pytest.raises(ValueError, match='the 2023 criterion needs'):
        validation.validate(net, nat, nat, 'relu1', null={'relu1': np.array([0.1])}, criterion='feather2023')


def test_classes_come_from_the_logits_whatever_the_layers_measured():
    net = toy_network()
    nat, met = natural_images(2), natural_images(2, seed=8)
    res = validation.validate(net, nat, met, 'relu1', layers=['relu2'])
    assert list(res[0].spearman_layers) == ['relu2', 'logits', 'relu1']
    for k in range(2):
        assert res[k].natural_class == int(np.argmax(net.logits(nat[k:k + 1]).numpy()))
        assert res[k].metamer_class == int(np.argmax(net.logits(met[k:k + 1]).numpy()))
    assert {r.natural_class for r in res} | {r.metamer_class for r in res} != {0}  # not the default


def test_the_2019_threshold_of_a_null_loaded_with_its_measures_is_its_spearman_maximum():
    net = toy_network()
    null = {'relu1': {'spearman': np.array([0.1, 0.35]), 'pearson': np.array([0.9]),
                      'snr_db_2023': np.array([7.0])}}
    assert validation.null_threshold(null, net, 'relu1') == pytest.approx(0.35)


def test_the_16_way_task_skips_a_background_logit():
    """Networks with 1001 logits (class 0 the background, info['logit_offset'] = 1) map class i + 1."""
    import keras
    from model_metamers import resources
    from model_metamers.networks.base import MetamerNetwork
    inp = keras.Input((1001,))
    relu = keras.layers.ReLU(name='r')(inp)
    logits = keras.layers.Identity(name='logits')(relu)
    net = MetamerNetwork('toy_16way_1001', inp, {'relu': relu, 'logits': logits}, ['relu', 'logits'],
                         ['background'] + resources.imagenet_classes(), 'image', info={'logit_offset': 1})
    knife, dog = 499, resources.imagenet_16class_indices()['dog'][0]
    natural = np.zeros((1, 1001), np.float32)
    natural[0, knife + 1] = 1.0  # ImageNet class 499 is logit 500
    metamer = np.zeros((1, 1001), np.float32)
    metamer[0, dog + 1] = 1.0
    res = validation.validate(net, natural, metamer, 'relu', criterion='feather2023')[0]
    assert (res.natural_class, res.metamer_class, res.same_class) == ('knife', 'dog', False)
    null = {'relu': {'spearman': np.array([0.0]), 'pearson': np.array([0.0]), 'snr_db_2023': np.array([-5.0])}}
    judged = validation.validate(net, natural, natural, 'relu', null=null, criterion='feather2023')[0]
    assert judged.passed and judged.natural_class == 'knife'
    assert judged.criterion == 'same class (16-category (force_16_choice)) and spearman, pearson, dB SNR (2023) ' \
                               'each >= null max'
