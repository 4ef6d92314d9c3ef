"""The synthesis engine on small networks: the original procedure exactly, batching, resume."""

import json
import os
import time

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from model_metamers.networks.base import MetamerNetwork
from model_metamers.synthesis import (Feather2019, Feather2023, MetamerSynthesizer, SynthesisError,
                                      image_noise, pink_noise)
from model_metamers.synthesis.procedures import make_procedure


def toy_network(modality='image', n_in=48, seed=0):
    """Dense -> ReLU -> Dense -> ReLU -> logits, with known pre-activations."""
    init = keras.initializers.GlorotUniform(seed=seed)
    inp = keras.Input((n_in,))
    h1 = keras.layers.Dense(24, name='d1', kernel_initializer=init, bias_initializer='zeros')(inp)
    r1 = keras.layers.ReLU(name='r1')(h1)
    h2 = keras.layers.Dense(16, name='d2', kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(r1)
    r2 = keras.layers.ReLU(name='r2')(h2)
    logits = keras.layers.Dense(4, name='logits', kernel_initializer=keras.initializers.GlorotUniform(seed + 2))(r2)
    stages = {'input': inp, 'd1': h1, 'relu1': r1, 'd2': h2, 'relu2': r2, 'logits': logits}
    net = MetamerNetwork('toy_' + modality, inp, stages, ['relu1', 'relu2', 'logits'], list('abcd'),
                         modality, relu_stages={'relu1': ['d1'], 'relu2': ['d2']},
                         sample_rate=16000 if modality == 'audio' else None)
    return net


def natural_images(n, n_in=48, seed=1):
    return np.random.RandomState(seed).rand(n, n_in).astype(np.float32)


def test_one_step_is_a_hand_computed_adam_step():
    net = toy_network()
    nat = natural_images(1)
    x0 = natural_images(1, seed=5) * 0.1 + 0.5
    synth = MetamerSynthesizer(net, nat, 'logits', learning_rate=0.003, initial=x0)
    # Gradient of sum((t - f(x))^2)/2 by hand from the Keras weights (float64).
    w = {n: [v.numpy().astype(np.float64) for v in net.model.get_layer(n).weights]
         for n in ('d1', 'd2', 'logits')}
    x = x0.astype(np.float64)
    a1 = x @ w['d1'][0] + w['d1'][1]
    z1 = np.maximum(a1, 0)
    a2 = z1 @ w['d2'][0] + w['d2'][1]
    z2 = np.maximum(a2, 0)
    out = z2 @ w['logits'][0] + w['logits'][1]
    d_out = out - synth.target.astype(np.float64)
    d_z2 = d_out @ w['logits'][0].T
    d_z1 = (d_z2 * (a2 > 0)) @ w['d2'][0].T
    grad = (d_z1 * (a1 > 0)) @ w['d1'][0].T
    # Adam, TF1 constants, first update (t = 1), learning rate 0.003 * 0.95**0.
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, 0.003
    m = (1 - beta1) * grad
    v = (1 - beta2) * grad ** 2
    expected = x - lr * np.sqrt(1 - beta2) / (1 - beta1) * m / (np.sqrt(v) + eps)
    expected = np.clip(expected, 0, 1)  # images stay in [0, 1]
    synth.synthesize(1)
    np.testing.assert_allclose(synth.metamer, expected, rtol=1e-5, atol=1e-7)
    assert np.abs(synth.metamer - x0).max() > 1e-4  # it moved


def test_learning_rate_schedule_is_tf1_exponential_decay():
    proc = Feather2019(0.001)
    for step in (0, 1, 999, 1000, 1500, 14999):
        expected = tf.compat.v1.train.exponential_decay(0.001, step, 1000, 0.95, staircase=False)()
        assert proc.step_size(step).numpy() == expected.numpy()
    assert proc.step_size(2000).numpy() == pytest.approx(0.001 * 0.95 ** 2, rel=1e-6)


@pytest.mark.parametrize('modality', ['image', 'audio'])
def test_bit_identical_to_the_tf1_adam_loop(modality):
    """The original procedure: tf.compat.v1 AdamOptimizer + exponential_decay in a session."""
    net = toy_network(modality)
    nat = natural_images(2)
    x0 = natural_images(2, seed=3) * 0.1 + 0.5
    n_steps = 120
    synth = MetamerSynthesizer(net, nat, 'relu2', learning_rate=0.01, initial=x0, log_every=50)
    synth.synthesize(n_steps)
    weights = {n: [v.numpy() for v in net.model.get_layer(n).weights] for n in ('d1', 'd2')}
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1
        x = v1.Variable(x0)

        @tf.custom_gradient
        def jittered_relu(z):
            return tf.nn.relu(z), lambda dy: dy

        h = tf.nn.relu(tf.matmul(x, weights['d1'][0]) + weights['d1'][1])
        rep = jittered_relu(tf.matmul(h, weights['d2'][0]) + weights['d2'][1])
        loss = tf.nn.l2_loss(synth.target - rep)
        step = v1.Variable(0, trainable=False)
        rate = v1.train.exponential_decay(0.01, step, 1000, 0.95)
        train = v1.train.AdamOptimizer(rate).minimize(loss, var_list=[x], global_step=step)
        clip = v1.assign(x, tf.clip_by_value(x, 0, 1))
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(n_steps):
                sess.run(train)
                if modality == 'image':
                    sess.run(clip)
            expected = sess.run(x)
    np.testing.assert_array_equal(synth.metamer, expected)


def test_modified_relu_only_at_the_matched_layer():
    net = toy_network()
    nat = natural_images(1)
    synth = MetamerSynthesizer(net, nat, 'relu2', initial=natural_images(1, seed=2))
    x = tf.constant(synth.initial)
    # Forward values equal the ordinary ReLU.
    rep = synth._represent(x)
    np.testing.assert_array_equal(rep.numpy(), net.activations(x, ['relu2'])['relu2'].numpy())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        modified = tf.reduce_sum(synth._represent(x) * tf.constant(np.arange(16, dtype=np.float32)))
        ordinary = tf.reduce_sum(net.activations(x, ['relu2'])['relu2'] * np.arange(16, dtype=np.float32))
        preact = tf.reduce_sum(net.activations(x, ['d2'])['d2'] * np.arange(16, dtype=np.float32))
    g_mod = tape.gradient(modified, x).numpy()
    assert np.any(net.activations(x, ['d2'])['d2'].numpy() < 0)  # some units are silenced
    # Gradient 1 through the matched ReLU == gradient of the pre-activation ...
    np.testing.assert_allclose(g_mod, tape.gradient(preact, x).numpy(), rtol=1e-6)
    # ... which differs from the ordinary ReLU's, while relu1 below stays ordinary.
    assert not np.allclose(g_mod, tape.gradient(ordinary, x).numpy())
    plain = MetamerSynthesizer(net, nat, 'relu2', initial=synth.initial, modified_relu=False)
    np.testing.assert_allclose(plain._represent(x).numpy(), rep.numpy())


def test_batch_equals_separate_runs():
    net = toy_network('audio')
    nat = natural_images(3) - 0.5
    together = MetamerSynthesizer(net, nat, 'relu1', seed=[4, 5, 6], log_every=20)
    together.synthesize(60)
    for k in range(3):
        alone = MetamerSynthesizer(net, nat[k], 'relu1', seed=4 + k, log_every=20)
        alone.synthesize(60)
        np.testing.assert_allclose(together.metamer[k], alone.metamer[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(together.loss[:, k], alone.loss[:, 0], rtol=1e-5)


def test_resume_after_a_kill_is_bit_identical(tmp_path):
    net = toy_network()
    nat = natural_images(2)
    full = MetamerSynthesizer(net, nat, 'relu1', log_every=10, seed=3)
    full.synthesize(50)
    state = str(tmp_path / 'run.state.h5')
    first = MetamerSynthesizer(net, nat, 'relu1', log_every=10, seed=3)

    class Killed(Exception):
        pass

    def kill_at_30(step, total, loss, rate):
        if step == 30:
            raise Killed()

    with pytest.raises(Killed):
        first.synthesize(50, checkpoint_path=state, checkpoint_every=10, progress=kill_at_30,
                         progress_every=10)
    assert os.path.exists(state)
    # The same command again: a fresh object resumes from the state file.
    second = MetamerSynthesizer(net, nat, 'relu1', log_every=10, seed=3)
    second.synthesize(50, checkpoint_path=state, checkpoint_every=10)
    np.testing.assert_array_equal(second.metamer, full.metamer)
    np.testing.assert_array_equal(second.loss, full.loss)
    assert second.snapshot_steps == full.snapshot_steps == [10, 20, 30, 40, 50]
    # A state file of another run is refused, not silently mixed in.
    other = MetamerSynthesizer(net, nat, 'relu2', log_every=10, seed=3)
    with pytest.raises(SynthesisError, match='different run'):
        other.synthesize(50, checkpoint_path=state)
    # A state past the iterations asked for would give a longer run than asked: refused.
    shorter = MetamerSynthesizer(net, nat, 'relu1', log_every=10, seed=3)
    with pytest.raises(SynthesisError, match='at iteration 50, past the 20 iterations'):
        shorter.synthesize(20, checkpoint_path=state)
    assert shorter.step == 0
    loaded = MetamerSynthesizer.load(state, net)
    np.testing.assert_array_equal(loaded.metamer, full.metamer)
    # Without checkpoint_every the state is saved at every log: a run killed at iteration 30,
    # before that iteration's save, resumes from 20.
    by_default = str(tmp_path / 'default.state.h5')
    with pytest.raises(Killed):
        MetamerSynthesizer(net, nat, 'relu1', log_every=10, seed=3).synthesize(
            50, checkpoint_path=by_default, progress=kill_at_30, progress_every=10)
    with h5py.File(by_default, 'r') as f:
        assert f.attrs['step'] == 20


def test_non_finite_loss_stops_and_keeps_the_last_good_snapshot():
    """A run that diverges at its first log keeps its noise and no snapshot."""
    net = toy_network('audio')
    nat = natural_images(2)
    synth = MetamerSynthesizer(net, nat, 'logits', learning_rate=1e38, log_every=5, seed=0)
    with pytest.warns(RuntimeWarning, match='non-finite'):
        synth.synthesize(200)
    assert synth.status == 'diverged' and 'non-finite' in synth.message
    assert np.all(np.isfinite(synth.metamer))
    assert synth.history['step'] == [0, 5] and synth.stopped_at == [5, 5]
    assert synth.snapshot_steps == [] and synth.snapshots == []
    for k in range(2):
        record = synth.record(k)
        # the last finite state is the start: the noise of iteration 0
        np.testing.assert_array_equal(record['metamer'], synth.initial[k])
        assert record['snapshots'].shape == (0, 48) and record['snapshots'].dtype == np.float32
        assert record['snapshot_steps'].size == 0 and record['iterations'] == 5
        assert record['status'] == 'diverged' and 'iteration 0' in record['message']
        assert record['loss_steps'].tolist() == [0, 5] and record['elapsed_s'] > 0


def test_logs_and_snapshots_follow_the_original_loop():
    net = toy_network()
    synth = MetamerSynthesizer(net, natural_images(1), 'relu2', log_every=40)
    synth.synthesize(100)
    assert synth.history['step'] == [0, 40, 80, 100]
    assert synth.snapshot_steps == [40, 80, 100]
    assert len(synth.history['grad_norm']) == 4 and len(synth.history['change_norm']) == 4
    assert synth.history['learning_rate'][0] == pytest.approx(0.001)
    assert synth.history['change_norm'][0][0] == 0 and synth.history['change_norm'][1][0] > 0
    assert synth.loss[-1, 0] < synth.loss[0, 0]
    assert np.all((synth.metamer >= 0) & (synth.metamer <= 1))


def test_read_only_views_match_the_history_and_the_per_stimulus_record():
    net = toy_network()
    synth = MetamerSynthesizer(net, natural_images(2), 'relu2', log_every=40)
    synth.synthesize(100)
    assert synth.loss_steps.tolist() == [0, 40, 80, 100]
    assert synth.losses.shape == synth.gradient_norm.shape == synth.change_norm.shape == (4, 2)
    assert synth.learning_rates.shape == (4,) and synth.learning_rates[0] == pytest.approx(0.001)
    assert synth.from_stage is None
    for k in range(2):
        record = synth.record(k)
        np.testing.assert_allclose(record['grad_norm'], synth.gradient_norm[:, k], rtol=1e-6)
        np.testing.assert_allclose(record['change_norm'], synth.change_norm[:, k], rtol=1e-6)
        np.testing.assert_array_equal(record['loss'], synth.losses[:, k])
        # the run's time to its end (100 iterations), logged at its last log, not at an earlier one
        assert record['elapsed_s'] == synth.history['time_s'][3] > synth.history['time_s'][2] > 0
    for name in ('losses', 'gradient_norm', 'from_stage', 'learning_rates'):
        with pytest.raises(AttributeError):
            setattr(synth, name, None)


def test_convergence_stop():
    net = toy_network()
    synth = MetamerSynthesizer(net, natural_images(1), 'relu1', log_every=50, learning_rate=0.05)
    synth.synthesize(5000, stop_threshold=1e-3, stop_window=100)
    assert synth.status == 'converged' and synth.step < 5000


def test_feather2023_steps_have_fixed_length_and_halving_size():
    net = toy_network('audio')
    nat = natural_images(2) - 0.5
    x0 = np.zeros((2, 48), np.float32)
    synth = MetamerSynthesizer(net, nat, 'relu1', procedure='feather2023', initial=x0,
                               learning_rate=0.05, log_every=1)
    synth.synthesize(1)
    np.testing.assert_allclose(np.linalg.norm(synth.metamer, axis=1), 0.05, rtol=1e-5)
    proc = Feather2023(1.0, block_length=3000)
    assert proc.step_size(2999).numpy() == 1.0 and proc.step_size(3000).numpy() == 0.5
    assert proc.step_size(21000).numpy() == pytest.approx(0.5 ** 7)
    assert Feather2023(1.0).default_iterations == 24000
    target = tf.constant([[3.0, 4.0]])
    assert proc.loss_per_stimulus(tf.constant([[0.0, 0.0]]), target).numpy()[0] == pytest.approx(1.0)
    clamped = MetamerSynthesizer(net, nat, 'relu1', procedure='feather2023', learning_rate=50.0)
    clamped.synthesize(3)
    assert np.abs(clamped.metamer).max() <= 1.0


def test_feather2019_defaults_clip_and_logged_loss():
    # The paper's settings (SPEC: 15000 iterations, Adam at lr 0.001 unless the network says otherwise).
    assert Feather2019.default_iterations == 15000 and Feather2019().learning_rate == 0.001
    # The logged loss is tf.nn.l2_loss per stimulus: (3^2 + 4^2) / 2.
    proc = Feather2019()
    assert proc.loss_per_stimulus(tf.constant([[0.0, 0.0]]), tf.constant([[3.0, 4.0]])).numpy()[0] == 12.5
    # Image metamers stay in [0, 1] however large the step.
    net = toy_network('image')
    synth = MetamerSynthesizer(net, natural_images(2), 'relu1', learning_rate=5.0, log_every=1)
    synth.synthesize(3)
    assert synth.metamer.min() >= 0.0 and synth.metamer.max() <= 1.0
    assert np.any(synth.metamer == 0.0) or np.any(synth.metamer == 1.0)  # the clip acted


# SPEC §4 and §9: images are clipped to [0, 1] by both procedures; the 2023 one also clamps waveforms
# to [-1, 1] and cochleagrams to [0, 100] (its data sets' min_value / max_value, upstream
# robustness/datasets.py), the 2019 one neither; the 2023 step halves every 3000 steps.
@pytest.mark.parametrize('name, modality, domain, kind, clip', [
    ('feather2019', 'image', 'stimulus', Feather2019, (0.0, 1.0)),
    ('feather2019', 'audio', 'stimulus', Feather2019, None),
    ('feather2019', 'audio', 'cochleagram', Feather2019, None),
    ('feather2023', 'image', 'stimulus', Feather2023, (0.0, 1.0)),
    ('feather2023', 'audio', 'stimulus', Feather2023, (-1.0, 1.0)),
    ('feather2023', 'audio', 'cochleagram', Feather2023, (0.0, 100.0)),
])
def test_make_procedure(name, modality, domain, kind, clip):
    proc = make_procedure(name, 0.25, modality, domain)
    assert type(proc) is kind and proc.name == name and proc.learning_rate == 0.25
    assert (tuple(proc.clip) if proc.clip is not None else None) == clip
    if name == 'feather2023':
        assert proc.step_size(2999).numpy() == 0.25 and proc.step_size(3000).numpy() == 0.125


def test_unknown_procedure_lists_the_known_ones():
    with pytest.raises(ValueError, match='feather2019, feather2023'):
        make_procedure('adam', 0.1, 'audio', 'stimulus')


def test_feather2023_lowers_the_loss():
    """Each normalised step goes down the gradient: the loss falls from the first step on."""
    net = toy_network('audio')
    nat = natural_images(2) - 0.5
    synth = MetamerSynthesizer(net, nat, 'relu1', procedure='feather2023', learning_rate=0.05,
                               log_every=1)
    synth.synthesize(200)
    loss = synth.loss
    assert np.all(loss[1] < loss[0])
    assert np.all(loss[-1] < 0.5 * loss[0])


def test_pink_noise_follows_the_reference_recipe(reference_word):
    # The shared reference's pink input is the original recipe without mean removal.
    ref = reference_word['pink_waveform'][0].astype(np.float64)
    mine = pink_noise(40000, seed=0, rms=0.1, scale=1.0)
    np.testing.assert_allclose(mine, ref - ref.mean(), atol=2e-7)
    init = pink_noise(40000, seed=0)
    # RMS 0.1 first, mean removed after (the original's order), then times 0.1.
    expected_rms = 0.1 * np.sqrt(0.1 ** 2 - ref.mean() ** 2)
    assert abs(np.sqrt(np.mean(init.astype(np.float64) ** 2)) - expected_rms) < 1e-7
    assert abs(init.mean()) < 1e-9
    img = image_noise((8, 8, 3), seed=1)
    assert img.min() >= 0.5 and img.max() < 0.6


def test_mirrored_strategy_with_one_replica_matches():
    strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
    with strategy.scope():
        net = toy_network()
    nat = natural_images(2)
    plain = MetamerSynthesizer(net, nat, 'relu2', log_every=10)
    plain.synthesize(30)
    dist = MetamerSynthesizer(net, nat, 'relu2', log_every=10, strategy=strategy)
    dist.synthesize(30)
    np.testing.assert_allclose(dist.metamer, plain.metamer, atol=1e-7)


def test_xla_compiled_loop_matches():
    net = toy_network('audio')
    nat = natural_images(1) - 0.5
    plain = MetamerSynthesizer(net, nat, 'relu1', log_every=10)
    plain.synthesize(20)
    xla = MetamerSynthesizer(net, nat, 'relu1', log_every=10, jit_compile=True)
    xla.synthesize(20)
    np.testing.assert_allclose(xla.metamer, plain.metamer, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('kwargs,message', [
    (dict(procedure='adam'), 'procedure'),
    (dict(domain='spectrogram'), 'domain'),
    (dict(domain='cochleagram'), 'cochleagram'),
    (dict(seed=[1, 2, 3]), 'seed'),
    (dict(seed=-1), 'seed must be in 0'),
    (dict(seed=2 ** 32), 'seed must be in 0'),
    (dict(learning_rate=0.0), 'learning rate must be a positive number'),
    (dict(learning_rate=float('inf')), 'learning rate must be a positive number'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(SynthesisError, match=message):
        MetamerSynthesizer(toy_network(), natural_images(2), 'relu1', **kwargs)


def test_unknown_layer_lists_valid_names():
    from model_metamers.networks import UnknownLayerError
    with pytest.raises(UnknownLayerError, match='relu1, relu2, logits'):
        MetamerSynthesizer(toy_network(), natural_images(1), 'conv9')


# ------------------------------------------------------------------ issue 25, fourth mutation pass
def coch_toy_network(seed=0):
    """An audio toy with a 'cochleagram' stage (Dense + ReLU of the waveform) that can be optimised."""
    init = keras.initializers.GlorotUniform
    inp = keras.Input((48,))
    pre = keras.layers.Dense(24, name='coch_pre', kernel_initializer=init(seed))(inp)
    coch = keras.layers.ReLU(name='coch')(pre)
    h2 = keras.layers.Dense(16, name='d2', kernel_initializer=init(seed + 1))(coch)
    r2 = keras.layers.ReLU(name='r2')(h2)
    logits = keras.layers.Dense(4, name='logits', kernel_initializer=init(seed + 2))(r2)
    stages = {'input': inp, 'cochleagram': coch, 'd2': h2, 'relu2': r2, 'logits': logits}
    return MetamerNetwork('toy_coch', inp, stages, ['cochleagram', 'relu2', 'logits'], list('abcd'), 'audio',
                          relu_stages={'relu2': ['d2']}, sample_rate=16000, representation_stage='cochleagram')


def _adam_first_step(x, grad, lr):
    """TF1 Adam's first update (t = 1; beta1 0.9, beta2 0.999, epsilon 1e-8), float64."""
    m, v = 0.1 * grad, 0.001 * grad ** 2
    return x - lr * np.sqrt(1 - 0.999) / (1 - 0.9) * m / (np.sqrt(v) + 1e-8)


def test_cochleagram_domain_starts_from_the_cochleagram_of_the_seeded_noise():
    net = coch_toy_network()
    nat = natural_images(2) - 0.5
    synth = MetamerSynthesizer(net, nat, 'relu2', domain='cochleagram', seed=[3, 4], log_every=10)
    assert synth.from_stage == 'cochleagram'
    # The optimised variable is the cochleagram: the natural one is the network's cochleagram of the
    # sound, the start the cochleagram of each stimulus' own pink noise (SPEC §4, Table S6).
    kernel, bias = [w.astype(np.float64) for w in net.model.get_layer('coch_pre').get_weights()]
    noise = np.stack([pink_noise(48, seed=s) for s in (3, 4)]).astype(np.float64)
    np.testing.assert_allclose(synth.natural_representation, np.maximum(nat @ kernel + bias, 0), atol=1e-6)
    np.testing.assert_allclose(synth.initial, np.maximum(noise @ kernel + bias, 0), atol=1e-6)
    assert 'pink noise' in synth.config()['initial_noise']
    np.testing.assert_allclose(synth.target, net.activations(nat, ['relu2'])['relu2'].numpy())
    synth.synthesize(30)
    assert synth.metamer.shape == (2, 24)
    assert np.all(synth.loss[-1] < synth.loss[0])


def test_matching_the_cochleagram_itself_is_the_distance_to_the_natural_cochleagram():
    net = coch_toy_network()
    nat = natural_images(2) - 0.5
    synth = MetamerSynthesizer(net, nat, 'cochleagram', domain='cochleagram', learning_rate=0.01, log_every=1)
    x0 = synth.initial.astype(np.float64)
    target = synth.natural_representation.astype(np.float64)
    np.testing.assert_array_equal(synth.target, synth.natural_representation)
    synth.synthesize(1)
    # loss = |t - x|^2 / 2 per stimulus; its gradient is x - t, whatever the network does after.
    np.testing.assert_allclose(synth.loss[0], 0.5 * np.sum((target - x0) ** 2, axis=1), rtol=1e-5)
    np.testing.assert_allclose(synth.gradient_norm[0], np.linalg.norm(x0 - target, axis=1), rtol=1e-5)
    np.testing.assert_allclose(synth.metamer, _adam_first_step(x0, x0 - target, 0.01), rtol=1e-5, atol=1e-7)


def test_logged_loss_gradient_and_change_norms_are_the_hand_computed_ones():
    net = toy_network()
    nat = natural_images(3)
    x0 = natural_images(3, seed=5) * 0.1 + 0.5
    synth = MetamerSynthesizer(net, nat, 'logits', learning_rate=0.003, initial=x0, log_every=4)
    w = {n: [v.numpy().astype(np.float64) for v in net.model.get_layer(n).weights] for n in ('d1', 'd2', 'logits')}
    x = x0.astype(np.float64)
    a1 = x @ w['d1'][0] + w['d1'][1]
    a2 = np.maximum(a1, 0) @ w['d2'][0] + w['d2'][1]
    out = np.maximum(a2, 0) @ w['logits'][0] + w['logits'][1]
    d_out = out - synth.target.astype(np.float64)
    grad = ((((d_out @ w['logits'][0].T) * (a2 > 0)) @ w['d2'][0].T) * (a1 > 0)) @ w['d1'][0].T
    synth.synthesize(4)
    assert synth.loss_steps.tolist() == [0, 4]
    np.testing.assert_allclose(synth.loss[0], 0.5 * np.sum(d_out ** 2, axis=1), rtol=1e-5)
    np.testing.assert_allclose(synth.gradient_norm[0], np.linalg.norm(grad, axis=1), rtol=1e-5)
    assert synth.gradient_norm.shape == (2, 3)
    np.testing.assert_array_equal(synth.change_norm[0], 0.0)
    np.testing.assert_allclose(synth.change_norm[1], np.linalg.norm(synth.metamer - x, axis=1), rtol=1e-6)
    assert synth.history['time_s'][0] == 0.0 and synth.history['time_s'][1] > 0.0
    np.testing.assert_allclose(synth.learning_rates, [0.003, 0.003 * 0.95 ** (4 / 1000)], rtol=1e-6)


def test_one_initial_is_the_start_of_every_stimulus_of_the_batch():
    net = toy_network('audio')
    start = natural_images(1, seed=7)[0] - 0.5
    synth = MetamerSynthesizer(net, natural_images(3), 'relu1', initial=start)
    assert synth.initial.shape == (3, 48)
    for k in range(3):
        np.testing.assert_array_equal(synth.initial[k], start)
        np.testing.assert_array_equal(synth.metamer[k], start)
    assert synth.config()['initial_noise'] == 'given'
    with pytest.raises(SynthesisError, match='initial must have shape'):
        MetamerSynthesizer(net, natural_images(3), 'relu1', initial=np.zeros((2, 48), np.float32))


def test_a_diverged_stimulus_keeps_its_record_to_where_it_stopped():
    net = toy_network('audio')
    nat = natural_images(2) - 0.5
    nat[1] *= 1e20  # its loss overflows float32 from the start
    synth = MetamerSynthesizer(net, nat, 'relu1', learning_rate=0.01, log_every=10)
    with pytest.warns(RuntimeWarning, match='non-finite by iteration 10'):
        synth.synthesize(40)
    bad, good = synth.record(1), synth.record(0)
    assert bad['status'] == 'diverged' and bad['iterations'] == 10
    assert 'non-finite by iteration 10' in bad['message'] and '(iteration 0)' in bad['message']
    assert bad['loss_steps'].tolist() == [0, 10] and bad['snapshot_steps'].tolist() == []
    np.testing.assert_array_equal(bad['metamer'], synth.initial[1])  # never a finite later state
    assert good['status'] == 'finished' and good['iterations'] == 40 and good['message'] == ''
    assert good['loss_steps'].tolist() == [0, 10, 20, 30, 40]
    assert good['snapshot_steps'].tolist() == [10, 20, 30, 40] and good['snapshots'].shape == (4, 48)
    assert synth.stopped_at == [None, 10] and synth.active.tolist() == [True, False]


@pytest.mark.parametrize('changed', [dict(modified_relu=False), dict(learning_rate=0.03),
                                     dict(procedure='feather2023', learning_rate=0.03),
                                     dict(layer='relu1')])
def test_a_synthesizer_never_reuses_the_traced_loop_of_another_run(changed):
    """Runs on one network share traced functions only when they would trace the same graph."""
    def run(net, layer='relu2', **kwargs):
        synth = MetamerSynthesizer(net, natural_images(2), layer, log_every=10, seed=1, **kwargs)
        synth.synthesize(10)
        return synth.metamer

    net = toy_network()
    first = run(net)  # the defaults: modified ReLU, feather2019 at 0.001, relu2
    second = run(net, **changed)
    alone = run(toy_network(), **changed)  # the same weights in a network of its own
    assert not np.array_equal(alone, first)
    np.testing.assert_array_equal(second, alone)


class _Killed(Exception):
    pass


def _kill_at(step_to_die):
    def progress(step, total, loss, rate):
        if step == step_to_die:
            raise _Killed()
    return progress


def test_a_resumed_batch_keeps_its_stopped_stimulus_as_it_stopped(tmp_path):
    net = toy_network('audio')
    nat = natural_images(2) - 0.5
    nat[1] *= 1e20  # diverges at the first log, step 10

    def fresh():
        return MetamerSynthesizer(net, nat, 'relu1', learning_rate=0.01, log_every=10)

    with pytest.warns(RuntimeWarning):
        whole = fresh()
        whole.synthesize(40)
        state = str(tmp_path / 'run.state.h5')
        with pytest.raises(_Killed):
            fresh().synthesize(40, checkpoint_path=state, progress=_kill_at(30), progress_every=10)
    resumed, seen = fresh(), []
    resumed.synthesize(40, checkpoint_path=state, progress=lambda step, *_: seen.append(step), progress_every=10)
    assert seen == [30, 40]  # resumed at 20 (killed before the save at 30), not started over
    np.testing.assert_array_equal(resumed.metamer, whole.metamer)
    np.testing.assert_array_equal(resumed.metamer[1], resumed.initial[1])
    assert resumed.stopped_at == [None, 10] and resumed.status == 'diverged'
    for k in range(2):
        a, b = resumed.record(k), whole.record(k)
        for key in ('loss', 'loss_steps', 'grad_norm', 'change_norm', 'snapshot_steps', 'snapshots'):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert (a['iterations'], a['status'], a['message']) == (b['iterations'], b['status'], b['message'])
    loaded = MetamerSynthesizer.load(state, net)
    assert loaded.stopped_at == [None, 10] and loaded.stimulus_status[1] == 'diverged'
    assert loaded.step == 40 and loaded.learning_rate == 0.01 and loaded.log_every == 10


def test_a_state_of_another_schedule_or_noise_is_refused_by_name(tmp_path):
    """Only a state that lacks a key added later (issue 20) is excused that key; a state that
    records another stage count, or another initial noise, belongs to another run."""
    net = toy_network()
    nat = natural_images(1)

    def run(stages):
        return MetamerSynthesizer(net, nat, 'relu1', procedure='feather2023', learning_rate=0.05, log_every=2,
                                  seed=3, stage_iterations=2, stages=stages)

    state = str(tmp_path / 'run.state.h5')
    run(2).synthesize(2, checkpoint_path=state)
    with pytest.raises(SynthesisError, match=r'differs in: stages\)'):
        run(3).synthesize(4, checkpoint_path=state)
    other_noise = run(2)
    other_noise.initial_noise = 'white'
    with pytest.raises(SynthesisError, match=r'differs in: initial_noise\)'):
        other_noise.synthesize(4, checkpoint_path=state)
    # A setting this version does not know (a state written by a later one) is not ignored.
    with h5py.File(state, 'a') as f:
        config = json.loads(f.attrs['config'])
        config['later_setting'] = 1
        f.attrs['config'] = json.dumps(config, sort_keys=True)
    with pytest.raises(SynthesisError, match=r'differs in: later_setting\)'):
        run(2).synthesize(4, checkpoint_path=state)


def test_load_rebuilds_a_run_that_started_from_a_given_stimulus(tmp_path):
    net = toy_network()
    nat = natural_images(1)
    start = np.full((1, 48), 0.5, np.float32)  # no seeded noise: the caller's own start
    state = str(tmp_path / 'run.state.h5')
    with pytest.raises(_Killed):
        MetamerSynthesizer(net, nat, 'relu1', log_every=5, initial=start).synthesize(
            20, checkpoint_path=state, progress=_kill_at(10), progress_every=5)
    whole = MetamerSynthesizer(net, nat, 'relu1', log_every=5, initial=start)
    whole.synthesize(20)
    loaded = MetamerSynthesizer.load(state, net)
    np.testing.assert_array_equal(loaded.initial, start)
    loaded.synthesize(20)
    np.testing.assert_array_equal(loaded.metamer, whole.metamer)


def test_a_state_file_of_an_earlier_version_is_resumed(tmp_path):
    """States written before issue 20 (no initial_noise / stages in the config) and before stimuli
    stopped one by one (no active, stopped_at, last_good_steps) still resume, not start over."""
    import h5py
    import json
    net = toy_network()
    nat = natural_images(2)

    def fresh():
        return MetamerSynthesizer(net, nat, 'relu1', procedure='feather2023', learning_rate=0.05,
                                  log_every=10, seed=3)

    whole = fresh()
    whole.synthesize(40)
    state = str(tmp_path / 'run.state.h5')
    with pytest.raises(_Killed):
        fresh().synthesize(40, checkpoint_path=state, progress=_kill_at(20), progress_every=10)
    with h5py.File(state, 'a') as f:
        config = json.loads(f.attrs['config'])
        del config['initial_noise'], config['stages']
        config['package_version'] = '0.0.1'  # another version of this package wrote it
        f.attrs['config'] = json.dumps(config, sort_keys=True)
        for name in ('active', 'stopped_at', 'last_good_steps'):
            del f[name]
    resumed, seen = fresh(), []
    resumed.synthesize(40, checkpoint_path=state, progress=lambda step, *_: seen.append(step), progress_every=10)
    assert seen == [20, 30, 40]  # resumed at 10 (killed before the save at 20), not started over
    assert resumed.loss_steps.tolist() == [0, 10, 20, 30, 40]
    np.testing.assert_array_equal(resumed.metamer, whole.metamer)
    np.testing.assert_array_equal(resumed.loss, whole.loss)


def test_each_stimulus_stops_at_the_first_log_where_its_loss_fell_by_less_than_the_threshold():
    net = toy_network('audio')
    nat = natural_images(3) - 0.5
    kwargs = dict(learning_rate=0.01, log_every=10, seed=[1, 2, 3])
    free = MetamerSynthesizer(net, nat, 'logits', **kwargs)
    free.synthesize(300)
    threshold, window = 0.9, 30
    # The rule written out: (L(s - window) - L(s)) / |L(s - window)| < threshold at a log step s.
    steps, loss = free.loss_steps.tolist(), free.loss
    expected = []
    for k in range(3):
        stops = [s for i, s in enumerate(steps) if s >= window and
                 (loss[steps.index(s - window), k] - loss[i, k]) / abs(loss[steps.index(s - window), k]) < threshold]
        expected.append(stops[0] if stops else None)
    assert len(set(expected)) > 1 and None not in expected and max(expected) < 300  # a case worth testing
    stopped = MetamerSynthesizer(net, nat, 'logits', **kwargs)
    stopped.synthesize(300, stop_threshold=threshold, stop_window=window)
    assert stopped.stopped_at == expected and stopped.step == max(expected)
    assert stopped.status == 'converged' and stopped.stimulus_status == ['converged'] * 3
    assert 'stopped at iteration %d' % max(expected) in stopped.message
    for k in range(3):
        record = stopped.record(k)
        assert record['iterations'] == expected[k] and record['loss_steps'][-1] == expected[k]
        assert record['snapshot_steps'][-1] == expected[k]
        np.testing.assert_allclose(record['loss'], loss[:steps.index(expected[k]) + 1, k], rtol=1e-5)
        np.testing.assert_allclose(record['metamer'], free.snapshots[free.snapshot_steps.index(expected[k])][k],
                                   atol=1e-5)
    # A relative decrease is at most 100 %: below a threshold of 2 at the first log where the rule
    # can be judged, iteration `window` (by default one log interval).
    for stop_window, first in ((window, window), (None, 10)):
        early = MetamerSynthesizer(net, nat, 'logits', **kwargs)
        early.synthesize(300, stop_threshold=2.0, stop_window=stop_window)
        assert early.stopped_at == [first] * 3 and early.step == first
    with pytest.raises(SynthesisError, match='multiple of log_every'):
        MetamerSynthesizer(net, nat, 'logits', **kwargs).synthesize(100, stop_threshold=0.1, stop_window=15)


def test_progress_reports_the_mean_loss_of_the_step_it_just_took():
    net = toy_network('audio')
    synth = MetamerSynthesizer(net, natural_images(2) - 0.5, 'relu1', learning_rate=0.01, log_every=1)
    calls = []
    began = time.perf_counter()
    synth.synthesize(5, progress=lambda *args: calls.append(args), progress_every=1)
    wall = time.perf_counter() - began
    assert [c[:2] for c in calls] == [(s, 5) for s in range(1, 6)]
    # iterations per second: one iteration per call, each taking less than the whole run
    assert all(c[3] * wall >= 1 for c in calls), (wall, calls)
    # The loss of the update that led to step s is the one logged at step s - 1; the mean over the batch.
    np.testing.assert_allclose([c[2] for c in calls], synth.loss[:5].mean(axis=1), rtol=1e-5)
    assert all(c[3] > 0 for c in calls)


def test_the_default_length_is_the_networks_for_2019_and_the_schedule_for_2023():
    net = toy_network('audio')
    net.default_iterations = 7
    synth = MetamerSynthesizer(net, natural_images(1), 'relu1', log_every=0)
    synth.synthesize()
    assert synth.step == 7 and synth.loss_steps.tolist() == [0, 7] and synth.snapshot_steps == [7]
    synth2023 = MetamerSynthesizer(net, natural_images(1), 'relu1', procedure='feather2023',
                                   stage_iterations=2, stages=3, log_every=0)
    synth2023.synthesize()
    assert synth2023.step == 6
    none = MetamerSynthesizer(net, natural_images(1), 'relu1', log_every=5)
    none.synthesize(0)
    assert none.loss_steps.tolist() == [0] and none.step == 0 and none.status == 'finished'
    with pytest.raises(SynthesisError, match='iterations must be >= 0'):
        none.synthesize(-1)


def test_pink_noise_of_an_odd_length_is_the_originals_recipe():
    """make_pink_noise(T) of the original for odd T: T // 2 + 2 rFFT bins, the last sample dropped."""
    n, seed = 47, 2
    rng = np.random.RandomState(seed)
    bins = rng.randn(n // 2 + 2) + 1j * rng.randn(n // 2 + 2)
    wave = np.fft.irfft(bins / np.sqrt(np.arange(n // 2 + 2) + 1.0))[:-1]
    wave = wave * 0.1 / np.sqrt(np.mean(wave ** 2))
    mine = pink_noise(n, seed=seed)
    assert mine.shape == (n,) and mine.dtype == np.float32
    np.testing.assert_allclose(mine, (wave - wave.mean()) * 0.1, rtol=1e-5, atol=1e-8)


def test_the_default_log_interval_is_the_papers_1000():
    synth = MetamerSynthesizer(toy_network('audio'), natural_images(1), 'relu1')
    synth.synthesize(2000)
    assert synth.loss_steps.tolist() == [0, 1000, 2000] and synth.snapshot_steps == [1000, 2000]
    assert synth.config()['log_every'] == 1000


def test_natural_stimuli_of_the_wrong_shape_or_an_uneven_split_are_refused_in_one_line():
    import types
    net = toy_network()
    with pytest.raises(SynthesisError, match=r'must have shape \(48,\) or \[batch\] \+ that, got \(2, 47\)'):
        MetamerSynthesizer(net, np.zeros((2, 47), np.float32), 'relu1')
    two_replicas = types.SimpleNamespace(num_replicas_in_sync=2)
    with pytest.raises(SynthesisError, match='batch of 3 stimuli does not split evenly over 2 replicas'):
        MetamerSynthesizer(net, natural_images(3), 'relu1', strategy=two_replicas)


def test_a_strategy_given_is_the_one_the_loop_runs_under():
    strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
    with strategy.scope():
        net = toy_network()
    runs = []
    real_run = strategy.run
    strategy.run = lambda fn, args=(), **kw: runs.append(fn) or real_run(fn, args=args, **kw)
    synth = MetamerSynthesizer(net, natural_images(2), 'relu2', log_every=10, strategy=strategy)
    synth.synthesize(10)
    assert runs and synth.strategy is strategy


def test_a_checkpoint_path_that_is_no_state_file_is_refused_in_one_line(tmp_path):
    import h5py
    net = toy_network()
    other = str(tmp_path / 'other.h5')
    with h5py.File(other, 'w') as f:
        f['x'] = np.zeros(3)
    with pytest.raises(SynthesisError, match='other.h5 is not a synthesis state file; delete it'):
        MetamerSynthesizer(net, natural_images(1), 'relu1').synthesize(10, checkpoint_path=other)
    garbage = tmp_path / 'garbage.h5'
    garbage.write_bytes(b'not hdf5 at all')
    with pytest.raises(SynthesisError, match='cannot read synthesis state .*garbage.h5 .*delete it to start over'):
        MetamerSynthesizer(net, natural_images(1), 'relu1').synthesize(10, checkpoint_path=str(garbage))


def test_iterations_per_second_of_a_history():
    from model_metamers.synthesis.synthesizer import iterations_per_second
    assert iterations_per_second({'step': [0, 500, 1000], 'time_s': [0.0, 1.0, 4.0]}) == 250.0
    assert np.isnan(iterations_per_second({'step': [0], 'time_s': [0.0]}))
    assert np.isnan(iterations_per_second({'step': [0, 10], 'time_s': [0.0, 0.0]}))


def test_load_rebuilds_a_2023_run_with_its_own_schedule(tmp_path):
    net = toy_network('audio')
    nat = natural_images(2) - 0.5
    kwargs = dict(procedure='feather2023', learning_rate=0.05, stage_iterations=4, stages=3, log_every=2,
                  modified_relu=False, seed=[5, 6])
    whole = MetamerSynthesizer(net, nat, 'relu1', **kwargs)
    whole.synthesize()
    state = str(tmp_path / 'run.state.h5')
    with pytest.raises(_Killed):
        MetamerSynthesizer(net, nat, 'relu1', **kwargs).synthesize(checkpoint_path=state, progress=_kill_at(6),
                                                                    progress_every=2)
    loaded = MetamerSynthesizer.load(state, net)
    assert loaded.step == 4 and loaded.procedure.config() == whole.procedure.config()
    assert (loaded.seeds, loaded.modified_relu, loaded.log_every) == ([5, 6], False, 2)
    loaded.synthesize()
    assert loaded.step == 12
    np.testing.assert_array_equal(loaded.metamer, whole.metamer)
    np.testing.assert_array_equal(loaded.learning_rates, whole.learning_rates)


def test_the_largest_seed_numpy_takes_is_accepted_and_draws_its_noise():
    seed = 2 ** 32 - 1  # numpy's RandomState takes 0 .. 2**32 - 1
    synth = MetamerSynthesizer(toy_network(), natural_images(2), 'relu1', seed=[seed, 1000])
    assert synth.seeds == [seed, 1000]
    for k, s in enumerate((seed, 1000)):
        np.testing.assert_allclose(synth.initial[k], np.random.RandomState(s).rand(48) * 0.1 + 0.5, rtol=1e-6)


def test_logs_stay_on_their_interval_whatever_the_progress_and_checkpoint_intervals(tmp_path):
    net = toy_network('audio')
    nat = natural_images(2) - 0.5
    plain = MetamerSynthesizer(net, nat, 'relu1', log_every=10, learning_rate=0.01)
    plain.synthesize(30)
    seen = []
    mixed = MetamerSynthesizer(net, nat, 'relu1', log_every=10, learning_rate=0.01)
    mixed.synthesize(30, progress=lambda step, *_: seen.append(step), progress_every=4,
                     checkpoint_path=str(tmp_path / 'state.h5'), checkpoint_every=7)
    assert mixed.loss_steps.tolist() == [0, 10, 20, 30] and mixed.snapshot_steps == [10, 20, 30]
    assert {4, 8, 12, 16, 20, 24, 28} <= set(seen) and seen[-1] == 30
    np.testing.assert_array_equal(mixed.metamer, plain.metamer)
    np.testing.assert_array_equal(mixed.loss, plain.loss)


def test_a_state_at_exactly_the_iterations_asked_for_is_the_finished_run(tmp_path):
    """A run killed after its last save (before its results were written) is taken as it is."""
    net = toy_network()
    nat = natural_images(2)
    state = str(tmp_path / 'run.state.h5')
    first = MetamerSynthesizer(net, nat, 'relu1', log_every=10)
    first.synthesize(30, checkpoint_path=state)
    again, seen = MetamerSynthesizer(net, nat, 'relu1', log_every=10), []
    again.synthesize(30, checkpoint_path=state, progress=lambda step, *_: seen.append(step), progress_every=10)
    assert seen == [] and again.step == 30
    np.testing.assert_array_equal(again.metamer, first.metamer)
    np.testing.assert_array_equal(again.loss, first.loss)


def test_dropout_is_off_while_a_metamer_is_optimised():
    # Found by mutation (issue 25, fourth pass): the optimised stimulus ran the model with
    # training=True unnoticed, since no test network had dropout; with it, every step would match
    # a random thinning of the layer, not the network the metamer is judged by.
    inp = keras.Input((4, 4, 3))
    hidden = keras.layers.Dense(20, activation='relu', name='hidden')(keras.layers.Flatten()(inp))
    dropped = keras.layers.Dropout(0.5, name='dropped')(hidden)
    out = keras.layers.Dense(4, name='logits')(dropped)
    net = MetamerNetwork.from_keras(keras.Model(inp, out), modality='image', class_names=list('abcd'))
    natural = np.random.RandomState(0).uniform(0, 1, (1, 4, 4, 3)).astype(np.float32)
    runs = []
    for _ in range(2):
        synth = MetamerSynthesizer(net, natural, 'logits', learning_rate=0.01, log_every=1, seed=0)
        start = time.perf_counter()
        synth.synthesize(3)
        # The time logged is the run's own: above 0, within the wall time around it.
        assert 0 < synth.history['time_s'][-1] <= time.perf_counter() - start
        runs.append(synth)
    np.testing.assert_array_equal(runs[0].losses, runs[1].losses)
    np.testing.assert_array_equal(runs[0].metamer, runs[1].metamer)
