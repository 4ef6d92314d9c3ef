"""Tiny registered networks for end-to-end tests of the CLIs (fast on 2 CPU cores)."""

import keras
import numpy as np
import scipy.io.wavfile

from model_metamers import networks
from model_metamers.networks.base import MetamerNetwork
from model_metamers.networks.weights.checkpoints import weights_kind
from model_metamers import weights_io


def build_toy_audio(weights='random', seed=0, n_samples=4000, sample_rate=2000):
    """Waveform [n] -> dense 32 ReLU -> dense 16 ReLU -> 5 logits, at 2 kHz (2 s)."""
    inp = keras.Input((n_samples,))
    g = keras.initializers.GlorotUniform
    h1 = keras.layers.Dense(32, name='d1', kernel_initializer=g(seed))(inp)
    r1 = keras.layers.ReLU(name='relu1')(h1)
    h2 = keras.layers.Dense(16, name='d2', kernel_initializer=g(seed + 1))(r1)
    r2 = keras.layers.ReLU(name='relu2')(h2)
    logits = keras.layers.Dense(5, name='logits', kernel_initializer=g(seed + 2))(r2)
    net = MetamerNetwork('toy_audio', inp, {'d1': h1, 'relu1': r1, 'd2': h2, 'relu2': r2,
                                            'logits': logits},
                         ['relu1', 'relu2', 'logits'], ['null', 'w1', 'w2', 'w3', 'w4'], 'audio',
                         relu_stages={'relu1': ['d1'], 'relu2': ['d2']}, sample_rate=sample_rate)
    kind, path = weights_kind(weights, 'toy_audio', 'model_metamers')
    if kind == 'h5':
        weights_io.load_weights(net.model, path)
    return net


networks.register('toy_audio', 'tests.toy_networks', 'build_toy_audio', 'audio', 'test network')


def write_toy_sounds(folder, count, seed, stem):
    """``count`` white-noise WAVs (4000 samples at 2 kHz, the toy audio network's input, RMS 0.2)
    named ``<stem><i>.wav`` in ``folder``; returns their paths."""
    rng = np.random.RandomState(seed)
    paths = []
    for i in range(count):
        path = str(folder / ('%s%d.wav' % (stem, i)))
        scipy.io.wavfile.write(path, 2000, (rng.randn(4000) * 0.2).astype(np.float32))
        paths.append(path)
    return paths


def build_toy_image(weights='random', seed=0, size=16):
    """Image [size, size, 3] -> 3x3 conv 4 ReLU -> 3 logits."""
    inp = keras.Input((size, size, 3))
    g = keras.initializers.GlorotUniform
    c1 = keras.layers.Conv2D(4, 3, padding='same', name='c1', kernel_initializer=g(seed))(inp)
    r1 = keras.layers.ReLU(name='relu1')(c1)
    logits = keras.layers.Dense(3, name='logits', kernel_initializer=g(seed + 1))(keras.layers.Flatten()(r1))
    return MetamerNetwork('toy_image', inp, {'c1': c1, 'relu1': r1, 'logits': logits}, ['relu1', 'logits'],
                          ['a', 'b', 'c'], 'image', relu_stages={'relu1': ['c1']})


networks.register('toy_image', 'tests.toy_networks', 'build_toy_image', 'image', 'test network')


def toy_settings(out, inputs, **kw):
    """Generation settings for the toy audio network: ``relu1`` and ``logits``, 20 iterations at
    lr 0.01, no progress line, no figures; ``kw`` overrides any of them."""
    from model_metamers.generation import GenerationSettings
    base = dict(network='toy_audio', weights='random', inputs=inputs, layers=['relu1', 'logits'],
                iterations=20, learning_rate=0.01, log_every=10, output_dir=str(out), progress=False,
                figures=False)
    base.update(kw)
    return GenerationSettings(**base)
