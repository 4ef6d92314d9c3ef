"""Tiny trainable networks and data sets for the training-pipeline tests (fast on 2 CPU cores).

``toy_tone`` (one softmax task) and ``toy_two_heads`` (a softmax ``word`` head and
a sigmoid ``audioset`` head): waveform ``[2000]`` at 2 kHz -> |rFFT| (fixed) ->
dense 16 ReLU -> logits. Their data: tones whose frequency says the class.
"""

import csv
import os

import keras
import numpy as np
import scipy.io.wavfile
import tensorflow as tf

from model_metamers import networks, weights_io
from model_metamers.networks.base import MetamerNetwork
from model_metamers.networks.weights.checkpoints import weights_kind

SR = 2000
N = 2000
WORDS = ['w0', 'w1', 'w2', 'w3']
TAGS = ['a0', 'a1', 'a2']


class Spectrum(keras.layers.Layer):
    def call(self, x):
        return tf.abs(tf.signal.rfft(x))


def _build(name, tasks, weights, seed):
    inp = keras.Input((N,), name='waveform')
    spec = Spectrum(name='spectrum')(inp)
    g = keras.initializers.GlorotUniform
    pre = keras.layers.Dense(16, name='hidden', kernel_initializer=g(seed))(spec)
    hidden = keras.layers.ReLU(name='relu_hidden')(pre)
    stages = {'spectrum': spec, 'hidden_pre_relu': pre, 'hidden': hidden}
    sizes = {'word': len(WORDS), 'audioset': len(TAGS)}
    for k, task in enumerate(tasks):
        stages['logits_%s' % task] = keras.layers.Dense(
            sizes[task], name='head_%s' % task, kernel_initializer=g(seed + 1 + k))(hidden)
    stages['logits'] = stages['logits_%s' % tasks[0]]
    if len(tasks) == 1:
        del stages['logits_%s' % tasks[0]]
    info = {'tasks': list(tasks), 'class_names_by_task': {'word': WORDS, 'audioset': TAGS}}
    net = MetamerNetwork(name, inp, stages, ['hidden', 'logits'], WORDS, 'audio',
                         relu_stages={'hidden': ['hidden_pre_relu']}, sample_rate=SR, info=info)
    kind, path = weights_kind(weights, name, 'model_metamers')
    if kind == 'h5':
        weights_io.load_weights(net.model, path)
    return net


def build_toy_tone(weights='random', seed=0):
    return _build('toy_tone', ['word'], weights, seed)


def build_toy_two_heads(weights='random', seed=0):
    return _build('toy_two_heads', ['word', 'audioset'], weights, seed)


networks.register('toy_tone', 'tests.training_toys', 'build_toy_tone', 'audio', 'test network')
networks.register('toy_two_heads', 'tests.training_toys', 'build_toy_two_heads', 'audio',
                  'test network')


def tone_dataset(folder, n_per_split=(32, 12, 8), seed=0, sr=SR, n=N):
    """WAVs of tones (class k: 100*(k+1) Hz at 2 kHz, scaled for ``sr``) + noise, and labels.csv.

    Columns ``label`` / ``label_word`` (the word) and ``label_audioset``
    (tags ``a<j>`` for each j with bit j of the word index set, ``;``-joined).
    """
    rng = np.random.RandomState(seed)
    os.makedirs(os.path.join(folder, 'wavs'), exist_ok=True)
    rows = []
    t = np.arange(n) / float(sr)
    i = 0
    for split, count in zip(('train', 'val', 'test'), n_per_split):
        for j in range(count):
            k = j % len(WORDS)
            x = np.sin(2 * np.pi * 100 * (k + 1) * t * SR / 2000.0 + rng.uniform(0, 6.3))
            x = x + 0.3 * rng.randn(n)
            path = 'wavs/%03d.wav' % i
            scipy.io.wavfile.write(os.path.join(folder, path), sr, (0.1 * x).astype(np.float32))
            tags = ';'.join(TAGS[b] for b in range(len(TAGS)) if (k + 1) >> b & 1)
            rows.append({'path': path, 'label': WORDS[k], 'label_word': WORDS[k],
                         'label_audioset': tags, 'split': split})
            i += 1
    with open(os.path.join(folder, 'labels.csv'), 'w', newline='') as f:
        w = csv.DictWriter(f, ['path', 'label', 'label_word', 'label_audioset', 'split'])
        w.writeheader()
        w.writerows(rows)
    return folder
