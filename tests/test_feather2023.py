"""Issue 20: ``--procedure=feather2023`` as the 2023 code (model_metamers_pytorch) runs it.

Each test computes its expected numbers from the 2023 definitions written out
here (numpy / scipy / a hand-written TF loop), not with the package's functions.
"""

import os
import re
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
import scipy.io.wavfile
import scipy.stats
import tensorflow as tf

from model_metamers import null_distribution as nd
from model_metamers import reports, resources, validation
from model_metamers.generation import GenerationError, GenerationSettings, generate, summary_table
from model_metamers.networks.base import MetamerNetwork
from model_metamers.synthesis import Feather2023, MetamerSynthesizer, SynthesisError, noise
from tests import toy_networks
from tests.conftest import REPO


def toy(modality, n_in=48, n_out=4, seed=0):
    init = keras.initializers.GlorotUniform
    inp = keras.Input((n_in,))
    h1 = keras.layers.Dense(24, name='d1', kernel_initializer=init(seed), bias_initializer='zeros')(inp)
    r1 = keras.layers.ReLU(name='r1')(h1)
    logits = keras.layers.Dense(n_out, name='logits', kernel_initializer=init(seed + 1))(r1)
    return MetamerNetwork('toy23_' + modality, inp, {'d1': h1, 'relu1': r1, 'logits': logits},
                          ['relu1', 'logits'], ['c%d' % i for i in range(n_out)], modality,
                          relu_stages={'relu1': ['d1']},
                          sample_rate=16000 if modality == 'audio' else None)


# ------------------------------------------------------------- 1 initial noise
def test_initial_noise_is_the_2023_scripts_own():
    seed = 3
    audio = MetamerSynthesizer(toy('audio'), np.zeros(48, np.float32) + 0.1, 'relu1',
                               procedure='feather2023', seed=seed)
    # make_metamers_wsj400_*: randn_like(im) * NOISE_SCALE, NOISE_SCALE = 1e-7.
    want = np.random.RandomState(seed).randn(48) * 1e-7
    np.testing.assert_allclose(audio.initial[0], want, rtol=1e-6)
    assert 'N(0, 1) x 1e-7' in audio.config()['initial_noise']

    image = MetamerSynthesizer(toy('image'), np.full(48, 0.3, np.float32), 'relu1',
                               procedure='feather2023', seed=seed)
    # make_metamers_imagenet_16_*: randn * 1/20 + 0.5, clamped to [min_value, max_value] = [0, 1].
    want = np.clip(np.random.RandomState(seed).randn(48) / 20 + 0.5, 0, 1)
    np.testing.assert_allclose(image.initial[0], want, rtol=1e-6)
    assert 'N(0.5, 0.05^2) clamped' in image.config()['initial_noise']
    # The clamp itself (never reached at sd 0.05): a wide draw ends up in [0, 1].
    wide = noise.gaussian_image_noise((500,), seed=seed, sd=1.0)
    np.testing.assert_allclose(wide, np.clip(np.random.RandomState(seed).randn(500) + 0.5, 0, 1), rtol=1e-6)
    assert wide.min() == 0.0 and wide.max() == 1.0

    # The 2019 procedure keeps its uniform [0.5, 0.6) start.
    old = MetamerSynthesizer(toy('image'), np.full(48, 0.3, np.float32), 'relu1', seed=seed)
    np.testing.assert_allclose(old.initial[0], np.random.RandomState(seed).rand(48) * 0.1 + 0.5, rtol=1e-6)
    assert 'uniform' in old.config()['initial_noise']


# ------------------------------------------------------------ 2 the schedule
def _loop_2023(net, natural, x0, stage_iterations, stages, step_size):
    """The 2023 loop written out: stages of L2-normalised steps, step size halved per stage, clamp."""
    kernel, bias = [tf.constant(w, tf.float64) for w in net.model.get_layer('d1').get_weights()]
    nat = tf.constant(natural, tf.float64)
    target = tf.nn.relu(nat @ kernel + bias)  # the ReLU itself (modified_relu=False)
    x = tf.constant(x0, tf.float64)
    for _ in range(stages):
        for _ in range(stage_iterations):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.norm(tf.nn.relu(x @ kernel + bias) - target) / tf.norm(target)
            g = tape.gradient(loss, x)
            x = tf.clip_by_value(x - step_size * g / (tf.norm(g) + 1e-10), -1.0, 1.0)
        step_size /= 2
    return x.numpy()


def test_short_schedule_keeps_the_halving_and_matches_the_2023_loop():
    net = toy('audio')
    natural = (np.random.RandomState(1).rand(1, 48).astype(np.float32) - 0.5)
    x0 = np.random.RandomState(2).randn(1, 48).astype(np.float32) * 0.1
    synth = MetamerSynthesizer(net, natural, 'relu1', procedure='feather2023', learning_rate=0.05,
                               stage_iterations=4, stages=3, modified_relu=False, initial=x0, log_every=1)
    synth.synthesize()  # default length: stages x stage_iterations
    assert synth.step == 12
    np.testing.assert_allclose(synth.history['learning_rate'][:12],
                               [0.05] * 4 + [0.025] * 4 + [0.0125] * 4)
    np.testing.assert_allclose(synth.metamer, _loop_2023(net, natural, x0, 4, 3, 0.05), atol=2e-5)
    assert synth.config()['stages'] == 3 and synth.config()['block_length'] == 4
    with pytest.raises(SynthesisError, match='stage_iterations'):
        MetamerSynthesizer(net, natural, 'relu1', procedure='feather2019', stages=3)
    with pytest.raises(SynthesisError, match='stages >= 1'):
        MetamerSynthesizer(net, natural, 'relu1', procedure='feather2023', stages=0)
    assert Feather2023(1.0).default_iterations == 24000


# ------------------------------------------------- 3, 4 criterion and dB SNR
def _snr_2023(signal, other):
    """distance_measures.compute_snr_db: 10*log10(norm(signal)/norm(signal-other))."""
    return 10 * np.log10(np.linalg.norm(signal.ravel()) / np.linalg.norm(signal.ravel() - other.ravel()))


def test_snr_is_the_2023_norm_ratio_half_the_power_ratio():
    rng = np.random.RandomState(0)
    a, b = rng.randn(100), rng.randn(100)
    assert validation.snr_db_2023(a, a + 0.1 * b) == pytest.approx(_snr_2023(a, a + 0.1 * b), rel=1e-12)
    power = 10 * np.log10(np.sum(a ** 2) / np.sum((0.1 * b) ** 2))
    assert validation.snr_db_2023(a, a + 0.1 * b) == pytest.approx(power / 2, rel=1e-12)
    assert validation.snr_db_2023(a, a) == np.inf


def _null_file(path, layer, spearman, pearson, snr_power):
    with h5py.File(path, 'w') as f:
        g = f.create_group(layer)
        g['spearman'], g['pearson'], g['snr_db'] = spearman, pearson, snr_power


def test_2023_criterion_needs_all_three_above_their_null_max(tmp_path):
    net = toy('audio')
    rng = np.random.RandomState(4)
    natural = rng.randn(1, 48).astype(np.float32)
    metamer = natural + 0.3 * rng.randn(1, 48).astype(np.float32)
    kernel, bias = net.model.get_layer('d1').get_weights()
    a = np.maximum(natural[0] @ kernel + bias, 0)
    b = np.maximum(metamer[0] @ kernel + bias, 0)
    rho = scipy.stats.spearmanr(b, a)[0]
    r = scipy.stats.pearsonr(b, a)[0]
    snr = _snr_2023(a, b)
    same = int(np.argmax(net.activations(natural, ['logits'])['logits'][0])) == int(
        np.argmax(net.activations(metamer, ['logits'])['logits'][0]))

    def check(null_rho, null_r, null_snr):
        path = str(tmp_path / 'null.h5')
        # Files store the power SNR; the 2023 threshold is half of it.
        _null_file(path, 'relu1', [0.0, null_rho], [0.0, null_r], [-5.0, 2 * null_snr])
        return validation.validate(net, natural, metamer, 'relu1', null=path, criterion='feather2023')[0]

    ok = check(rho - 1e-3, r - 1e-3, snr - 1e-3)
    assert ok.spearman_matched == pytest.approx(rho, abs=1e-6)
    assert ok.pearson_matched == pytest.approx(r, abs=1e-6)
    assert ok.snr_db_matched == pytest.approx(snr, abs=1e-5)
    assert ok.null_max_snr_db == pytest.approx(snr - 1e-3)
    assert ok.passed == same
    attrs = ok.as_attrs()
    for key in ('pearson_matched', 'snr_db_matched', 'null_max_spearman', 'null_max_pearson',
                'null_max_snr_db', 'snr_db_definition', 'class_task'):
        assert key in attrs
    assert 'ratio of norms' in attrs['snr_db_definition']
    # One measure inside its null (overlap) fails the metamer, whichever it is.
    for args in ((rho + 1e-3, r - 1e-3, snr - 1e-3), (rho - 1e-3, r + 1e-3, snr - 1e-3),
                 (rho - 1e-3, r - 1e-3, snr + 1e-3)):
        assert not check(*args).passed
    # feather2019 keeps its own criterion (rho above the null max and the same class) and attributes.
    path = str(tmp_path / 'null.h5')
    _null_file(path, 'relu1', [0.0, rho - 1e-3], [0.0, 1.0], [-5.0, 99.0])
    old = validation.validate(net, natural, metamer, 'relu1', null=path)[0]
    assert old.passed == same and 'pearson_matched' not in old.as_attrs()


def _force_16_choice(logits, offset):
    """helpers_16_choice.force_16_choice: the first class down the ranking that is in a category."""
    member = {544: 'oven'}  # 'Dutch oven': its name maps to an oven WNID in the 2023 lookup
    for name, idx in resources.imagenet_16class_indices().items():
        for i in idx:
            member[i] = name
    for i in np.flip(np.argsort(logits[offset:], 0)):
        if int(i) in member:
            return member[int(i)]


@pytest.mark.parametrize('offset', [0, 1])
def test_sixteen_way_is_force_16_choice(offset):
    rng = np.random.RandomState(offset)
    logits = rng.randn(20, 1000 + offset)
    assert validation.sixteen_way_2023(logits, offset) == [_force_16_choice(z, offset) for z in logits]
    # Not Geirhos' mean probability: one knife logit on top wins over the 109 dog classes.
    z = np.full(1000 + offset, -5.0)
    z[np.array(resources.imagenet_16class_indices()['dog']) + offset] = 3.0
    z[499 + offset] = 3.5
    assert validation.sixteen_way_2023(z, offset) == ['knife']
    # The 2023 code's name lookup puts class 544 'Dutch oven' (a pot) in 'oven'.
    assert resources.imagenet_classes()[544] == 'Dutch oven'
    z[544 + offset] = 4.0
    assert validation.sixteen_way_2023(z, offset) == ['oven']


def test_images_are_validated_by_the_16_way_task():
    # Logits are the input itself: the classes are whatever the input puts on top.
    inp = keras.Input((1000,))
    relu = keras.layers.ReLU(name='r')(inp)
    logits = keras.layers.Identity(name='logits')(relu)
    net = MetamerNetwork('toy23_16way', inp, {'relu': relu, 'logits': logits}, ['relu', 'logits'],
                         resources.imagenet_classes(), 'image')
    dogs = resources.imagenet_16class_indices()['dog']
    natural = np.zeros((1, 1000), np.float32)
    natural[0, dogs[0]] = 1.0
    metamer = np.zeros((1, 1000), np.float32)
    metamer[0, dogs[1]] = 1.0
    new = validation.validate(net, natural, metamer, 'relu', criterion='feather2023')[0]
    assert new.same_class is True and new.natural_class == 'dog' and '16-category' in new.class_task
    old = validation.validate(net, natural, metamer, 'relu')[0]
    assert old.same_class is False  # 1000-way argmax: two different dog breeds


# ------------------------------------------------------------- 5 null sampling
def test_consecutive_pairs_follow_make_null_distributions(tmp_path):
    net = toy_networks.build_toy_audio()
    rng = np.random.RandomState(5)
    stimuli = (rng.randn(9, 4000) * 0.1).astype(np.float32)
    stimuli[4] = 0.0  # ReLU activations all zero (no biases): the 2023 code sets the SNR (and rhos) to 0
    got = nd.compute_null(net, stimuli, layers=['relu1'], num_pairs=6, pairing='consecutive')
    acts = net.activations(stimuli, ['relu1'])['relu1'].numpy()
    assert not acts[4].any()
    want = {'spearman': [], 'pearson': [], 'snr': []}
    for k in range(6):
        a, b = acts[(2 * k) % 9], acts[(2 * k + 1) % 9]   # wraps round the 9 examples
        if a.sum() == 0 or b.sum() == 0:
            want['spearman'].append(0), want['pearson'].append(0), want['snr'].append(0)
            continue
        want['spearman'].append(scipy.stats.spearmanr(a, b)[0])
        want['pearson'].append(scipy.stats.pearsonr(a, b)[0])
        want['snr'].append(_snr_2023(a, b))
    np.testing.assert_array_equal(got['relu1']['pairs'], [[2 * k, 2 * k + 1] for k in range(6)])
    np.testing.assert_allclose(got['relu1']['spearman'], want['spearman'], atol=1e-6)
    np.testing.assert_allclose(got['relu1']['pearson'], want['pearson'], atol=1e-6)
    np.testing.assert_allclose(got['relu1']['snr_db_2023'], want['snr'], atol=1e-5)
    # Sharded as before: the shards' pairs are the 2023 splits, in order.
    parts = [nd.compute_null(net, stimuli, layers=['relu1'], num_pairs=6, pairing='consecutive',
                             num_shards=2, shard_index=k) for k in range(2)]
    np.testing.assert_array_equal(np.concatenate([p['relu1']['pairs'] for p in parts]),
                                  got['relu1']['pairs'])
    np.testing.assert_allclose(np.concatenate([p['relu1']['snr_db_2023'] for p in parts]),
                               got['relu1']['snr_db_2023'])
    # Written and read back for the 2023 criterion: the stored 2023 SNR, named in the file.
    path = str(tmp_path / 'null.h5')
    nd.write_null(path, got, {'network': 'toy_audio', 'pairing': 'consecutive'})
    null = validation.load_null(path, measures=True)
    np.testing.assert_allclose(null['relu1']['snr_db_2023'], want['snr'], atol=1e-5)
    with h5py.File(path, 'r') as f:
        assert 'ratio of norms' in f.attrs['snr_db_2023_definition']


def test_augmentation_is_per_example_position_and_the_same_in_every_shard(tmp_path):
    net = toy_networks.build_toy_audio()
    stimuli = (np.random.RandomState(6).randn(4, 4000) * 0.1).astype(np.float32)
    seen = []

    def augment(batch, positions):
        seen.extend(int(p) for p in positions)
        return batch + 0.01 * positions[:, None].astype(np.float32)

    got = nd.compute_null(net, stimuli, layers=['relu1'], num_pairs=3, pairing='consecutive',
                          augment=augment, batch_size=4)
    assert seen == [0, 1, 2, 3, 4, 5]  # examples 0..3 then 0, 1 again, each its own draw
    acts = net.activations(stimuli[[0, 1, 2, 3, 0, 1]] + 0.01 * np.arange(6)[:, None].astype(np.float32),
                           ['relu1'])['relu1'].numpy()
    np.testing.assert_allclose(got['relu1']['spearman'],
                               [scipy.stats.spearmanr(acts[2 * k], acts[2 * k + 1])[0] for k in range(3)],
                               atol=1e-6)
    with pytest.raises(nd.NullDistributionError, match='consecutive'):
        nd.compute_null(net, stimuli, num_pairs=3, augment=augment)
    # The training pipeline's mixer: a stateless draw per position.
    bg = tmp_path / 'bg'
    bg.mkdir()
    scipy.io.wavfile.write(str(bg / 'noise.wav'), 2000, (np.random.RandomState(7).randn(6000) * 0.1)
                           .astype(np.float32))
    mix = nd.training_augmentation(net, str(bg), seed=0)
    once = mix(stimuli[:2], np.array([10, 11]))
    again = mix(stimuli[:2], np.array([10, 11]))
    np.testing.assert_array_equal(once, again)
    assert not np.allclose(once, stimuli[:2]) and once.shape == (2, 4000)


# ------------------------------------------------ generation, flags, the table
def test_generation_records_the_2023_run(tmp_path):
    net = toy_networks.build_toy_audio()
    sound = str(tmp_path / 'word.wav')
    scipy.io.wavfile.write(sound, 2000, (np.random.RandomState(0).randn(4000) * 0.2).astype(np.float32))
    null = str(tmp_path / 'null.h5')
    stimuli = (np.random.RandomState(1).randn(8, 4000) * 0.1).astype(np.float32)
    nd.write_null(null, nd.compute_null(net, stimuli, layers=['relu1'], num_pairs=4,
                                        pairing='consecutive'), {'network': 'toy_audio'})
    settings = GenerationSettings(network='toy_audio', weights='random', inputs=[sound], layers=['relu1'],
                                  procedure='feather2023', stage_iterations=3, stages=2,
                                  modified_relu=False, null_distribution=null, log_every=0,
                                  output_dir=str(tmp_path / 'out'), progress=False, figures=False)
    rows = generate(settings, network=net)
    with h5py.File(str(tmp_path / 'out' / 'toy_audio' / 'word.h5'), 'r') as f:
        attrs = dict(f['relu1'].attrs)
    assert attrs['iterations'] == 6 and attrs['stages'] == 2 and attrs['stage_iterations'] == 3
    assert not attrs['modified_relu'] and 'N(0, 1) x 1e-7' in attrs['initial_noise']
    with h5py.File(str(tmp_path / 'out' / 'toy_audio' / 'word.h5'), 'r') as f:
        metamer, natural = f['relu1']['metamer'][()], f['relu1']['natural'][()]
    a = net.activations(natural[None], ['relu1'])['relu1'].numpy()[0]
    b = net.activations(metamer[None], ['relu1'])['relu1'].numpy()[0]
    assert attrs['snr_db_matched'] == pytest.approx(_snr_2023(a, b), abs=1e-4)
    assert attrs['null_max_snr_db'] == pytest.approx(np.max(nd.compute_null(
        net, stimuli, layers=['relu1'], num_pairs=4, pairing='consecutive')['relu1']['snr_db_2023']))
    # The report: the 2023 measures beside their null maxima, the verdict by the 2023 criterion.
    paths, report_rows = reports.report(str(tmp_path / 'out' / 'toy_audio'), str(tmp_path / 'rep'),
                                        null_distribution=null)
    row = report_rows[0]
    assert row['median_snr_db_2023'] == pytest.approx(attrs['snr_db_matched'])
    assert row['max_null_snr_db_2023'] == pytest.approx(attrs['null_max_snr_db'])
    assert row['max_null_pearson'] == pytest.approx(attrs['null_max_pearson'])
    assert row['passed'] == int(attrs['passed'])
    with open(paths['markdown']) as f:
        assert 'max_null_snr_db_2023' in f.read()
    # The run's rows and end-of-run table: the 2023 measures, each beside its null's maximum.
    measures = {'pearson': 'pearson_matched', 'null_max_pearson': 'null_max_pearson',
                'snr_db': 'snr_db_matched', 'null_max_snr_db': 'null_max_snr_db'}
    assert {k: rows[0][k] for k in measures} == {k: attrs[name] for k, name in measures.items()}
    lines = summary_table(rows).splitlines()
    head, cells = (re.split(r'\s{2,}', lines[i].strip()) for i in (0, 2))
    assert head == ['input', 'layer', 'final_loss', 'spearman', 'null_max', 'pearson', 'null_max_r', 'snr_db_2023',
                    'null_max_snr', 'same_class', 'passed', 'status']
    assert cells[5:9] == ['%.4f' % attrs['pearson_matched'], '%.4f' % attrs['null_max_pearson'],
                          '%.2f' % attrs['snr_db_matched'], '%.2f' % attrs['null_max_snr_db']]
    with pytest.raises(GenerationError, match='feather2023'):
        generate(GenerationSettings(network='toy_audio', weights='random', inputs=[sound], stages=2,
                                    output_dir=str(tmp_path / 'x')), network=net)


@pytest.mark.slow  # about 13 s: a subprocess that imports TensorFlow
def test_cli_flags(tmp_path):
    """--procedure=feather2023 --stage_iterations --stages --nomodified_relu on the embedded kws_2d."""
    out = str(tmp_path / 'out')
    run = subprocess.run([sys.executable, os.path.join(REPO, 'run_generation.py'), '--network=kws_2d',
                          '--layer=conv_0', '--procedure=feather2023', '--stage_iterations=2', '--stages=2',
                          '--nomodified_relu', '--log_every=0', '--nofigures', '--output_dir=' + out],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr
    assert 'snr_db_2023' in run.stdout and 'null_max_snr' in run.stdout
    files = [f for f in os.listdir(os.path.join(out, 'kws_2d')) if f.endswith('.h5')]
    with h5py.File(os.path.join(out, 'kws_2d', files[0]), 'r') as f:
        attrs = dict(f['conv_0'].attrs)
    assert attrs['iterations'] == 4 and not attrs['modified_relu'] and attrs['stages'] == 2
    assert attrs['null_max_snr_db'] > 0 and 'ratio of norms' in attrs['snr_db_definition']


@pytest.mark.slow  # two subprocesses that import TensorFlow
def test_null_cli_consecutive_augmented_pairs(tmp_path):
    data, bg = tmp_path / 'sounds', tmp_path / 'bg'
    data.mkdir()
    bg.mkdir()
    rng = np.random.RandomState(0)
    for i in range(6):
        scipy.io.wavfile.write(str(data / ('s%d.wav' % i)), 2000, (rng.randn(4000) * 0.1).astype(np.float32))
    scipy.io.wavfile.write(str(bg / 'b.wav'), 2000, (rng.randn(8000) * 0.1).astype(np.float32))
    out = tmp_path / 'null.h5'
    code = ('import sys; sys.argv=["nd"]+sys.argv[1:]; import tests.toy_networks; '
            'from model_metamers import null_distribution as nd; '
            'from model_metamers import cli; cli.run(nd.main, nd._define_flags)')
    args = [sys.executable, '-c', code, '--network=toy_audio', '--weights=random', '--dataset=%s' % data,
            '--num_pairs=3', '--pairing=consecutive', '--augment', '--output=%s' % out]
    bad = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 1 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith('error: --augment needs --background_dir')
    run = subprocess.run(args + ['--background_dir=%s' % bg], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    with h5py.File(out, 'r') as f:
        assert f.attrs['pairing'] == 'consecutive' and 'background mix' in f.attrs['augment']
        np.testing.assert_array_equal(f['relu1']['pairs'][()], [[0, 1], [2, 3], [4, 5]])
        assert f['relu1']['snr_db_2023'].shape == (3,)


def test_a_spearman_only_null_is_no_2023_null(tmp_path, monkeypatch):
    net = toy_networks.build_toy_audio()
    sound = str(tmp_path / 'word.wav')
    scipy.io.wavfile.write(sound, 2000, (np.random.RandomState(0).randn(4000) * 0.2).astype(np.float32))
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', str(tmp_path))
    with h5py.File(str(tmp_path / 'toy_audio.null.h5'), 'w') as f:
        f.create_group('relu1')['spearman'] = [0.1, 0.2]
    settings = dict(network='toy_audio', weights='random', inputs=[sound], layers=['relu1'],
                    procedure='feather2023', stage_iterations=1, stages=2, log_every=0, progress=False,
                    figures=False)
    lines = []
    rows = generate(GenerationSettings(output_dir=str(tmp_path / 'a'), **settings), network=net,
                    log=lines.append)
    assert any(line.startswith('not using') and 'Spearman rho only' in line for line in lines)
    assert rows[0]['class_only']
    with pytest.raises(GenerationError, match='Pearson r and dB SNR'):
        generate(GenerationSettings(output_dir=str(tmp_path / 'b'), null_distribution=str(
            tmp_path / 'toy_audio.null.h5'), **settings), network=net)
