"""Keyword-spotting networks of the follow-up student study (SPEC §7): ``kws_2d``, ``kws_1d_grouped``.

The TensorFlow "simple audio recognition" model with a cochleagram in place of
the STFT, for 8 words. Input: a waveform ``[batch, 16000]`` (1 s at 16 kHz).

Front end (shared): ``cochleagram`` ``[52, 100, 1]`` (:data:`COCHLEAGRAM_CONFIG`)
-> ``resize`` to ``[32, 32, 1]`` (bilinear) -> ``normalization`` (per-channel
mean / variance adapted on the training set; stored in the weights file as
``normalization/mean|variance``).

``kws_2d`` stages after the front end (shapes without batch; parameter counts):
``conv_0_pre_relu`` / ``conv_0`` 30x30x32 [320], ``conv_1_pre_relu`` / ``conv_1``
28x28x64 [18496], ``max_pool`` 14x14x64, (dropout 0.25), ``flatten`` 12544,
``fc_intermediate_pre_relu`` / ``fc_intermediate`` 128 [1605760], (dropout 0.5),
``logits`` 8 [1032].

``kws_1d_grouped``: ``time_major`` (the resized cochleagram transposed to time x
frequency) -> ``reshape_1d`` 32x32 (32 frequency channels) -> ``conv_0`` Conv1D 128,
kernel 3, 8 groups, 30x128 [1664] -> ``conv_1`` Conv1D 512, kernel 3, 8 groups,
28x512 [25088] -> ``reshape_2d`` 28x512x1 -> ``max_pool`` 14x256x1 -> (dropout 0.25)
-> ``flatten`` 3584 -> ``fc_intermediate`` 512 [1835520] -> (dropout 0.5) ->
``logits`` 8 [4104].

Metamer layers: ``cochleagram``, ``conv_0``, ``conv_1``, ``fc_intermediate``,
``logits`` (every ReLU stage has its ``_pre_relu`` stage, for the modified-gradient
ReLU). Dropout layers are in the graph for training and are the identity at
synthesis and evaluation (``training=False``).
"""

import collections
import os
import zlib

import keras
import tensorflow as tf

import tfcochleagram
from model_metamers.networks.weights import checkpoints
from model_metamers.networks.base import MetamerNetwork
from model_metamers.networks.weights.checkpoints import CheckpointError

WORDS = ('down', 'go', 'left', 'no', 'right', 'stop', 'up', 'yes')
SAMPLE_RATE = 16000  # Hz
SIGNAL_LENGTH = 16000  # samples (1 s)
IMAGE_SIZE = 32  # the Resizing layer's output, rows x columns
# UNKNOWN of SPEC §7 (the study's cochleagram parameters): the word networks' front end
# (SPEC §1) at 16 kHz with one filter per ERB step (SAMPLE_FACTOR=1 -> 50 band-pass + low-pass +
# high-pass = 52 filters) and 100 envelope frames per second; 4x oversampling in frequency
# would be thrown away by the 32-row resize anyway and costs 2.5x the time. HIGH_LIM stays
# below the 8 kHz Nyquist frequency.
COCHLEAGRAM_CONFIG = dict(tfcochleagram.WORD_CONFIG, ENV_SR=100, LOW_LIM=20, HIGH_LIM=7800,
                          N=50, SAMPLE_FACTOR=1)
METAMER_LAYERS = ['cochleagram', 'conv_0', 'conv_1', 'fc_intermediate', 'logits']
RELU_STAGES = {name: [name + '_pre_relu'] for name in ['conv_0', 'conv_1', 'fc_intermediate']}
NETWORKS = {'kws_2d': '2d', 'kws_1d_grouped': '1d_grouped'}
TASK = 'keyword'  # the task name the training pipeline uses for these networks


def training_command(name):
    """The shell commands that make ``checkpoints/<name>.weights.h5`` (data set, then training)."""
    return ('python -m model_metamers.spoken_words --out=data/spoken_words && '
            'python -m model_metamers.train --network=%s --data=data/spoken_words' % name)


def missing_weights_error(name, path):
    """The one-line :class:`CheckpointError` for a keyword-spotting net without weights."""
    return CheckpointError('no trained weights for %s: %s does not exist; train them with: %s '
                           '(or make train-kws), or pass --weights=random for an untrained network'
                           % (name, path, training_command(name)))


def _weights_plan(name, weights):
    """``('random', None)`` or ``('h5', path)``; ``'auto'``/``'default'`` mean checkpoints/<name>.weights.h5."""
    if weights in (checkpoints.AUTO, checkpoints.DEFAULT):
        path = checkpoints.resolve_default(checkpoints.DEFAULT, name)
        if not os.path.isfile(path):
            raise missing_weights_error(name, path)
        return 'h5', path
    try:
        kind, path = checkpoints.weights_kind(weights, name, 'model_metamers .weights.h5')
    except CheckpointError:
        # These networks have no published checkpoint to fetch: say how to make the file.
        raise CheckpointError('no weights at %s for %s: give a .weights.h5 file (train one with: %s), '
                              'or --weights=random for an untrained network'
                              % (weights, name, training_command(name))) from None
    if kind == 'checkpoint':
        raise CheckpointError('%s loads only .weights.h5 files written by python -m '
                              'model_metamers.train, not the TF checkpoint %s' % (name, path))
    return kind, path


class FeatureNormalization(keras.layers.Layer):
    """``(x - mean) / sqrt(variance)`` per channel (last axis), statistics fixed after adaptation.

    Keras' ``Normalization`` layer caches its statistics as constants when built,
    so weights assigned later (a loaded ``.weights.h5``) would be ignored until
    ``finalize_state()``; this layer reads its two variables on every call.
    Weights ``mean`` and ``variance`` (non-trainable), shape ``[channels]``;
    identity until adapted (mean 0, variance 1).
    """

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.mean = self.add_weight(name='mean', shape=(channels,), initializer='zeros',
                                    trainable=False)
        self.variance = self.add_weight(name='variance', shape=(channels,), initializer='ones',
                                        trainable=False)

    def call(self, x):
        # Same floor as Keras' Normalization: sqrt(variance) of at least 1e-7.
        return (x - self.mean) / tf.maximum(tf.sqrt(self.variance), 1e-7)

    def set_statistics(self, mean, variance):
        """Assign the per-channel mean and variance (arrays of shape ``[channels]``)."""
        self.mean.assign(tf.reshape(tf.cast(mean, self.mean.dtype), self.mean.shape))
        self.variance.assign(tf.reshape(tf.cast(variance, self.variance.dtype), self.variance.shape))


class _Init:
    """Keras default initialisers (Glorot-uniform kernels, zero biases), seeded per layer name."""

    def __init__(self, seed):
        self.seed = int(seed)

    def __call__(self, layer_name):
        return keras.initializers.GlorotUniform(
            seed=(self.seed * 1000003 + zlib.crc32(layer_name.encode())) % (2 ** 31))


def _relu_stage(stages, name, pre):
    stages[name + '_pre_relu'] = pre
    stages[name] = keras.layers.ReLU(name='relu_' + name)(pre)
    return stages[name]


def _front_end(waveform, stages):
    x = stages['cochleagram'] = tfcochleagram.Cochleagram(
        SAMPLE_RATE, name='cochleagram', **COCHLEAGRAM_CONFIG)(waveform)
    x = stages['resize'] = keras.layers.Resizing(IMAGE_SIZE, IMAGE_SIZE, name='resize')(x)
    x = stages['normalization'] = FeatureNormalization(name='normalization')(x)
    return x


def _body_2d(x, stages, init):
    x = _relu_stage(stages, 'conv_0', keras.layers.Conv2D(
        32, 3, padding='valid', name='conv_0', kernel_initializer=init('conv_0'))(x))
    x = _relu_stage(stages, 'conv_1', keras.layers.Conv2D(
        64, 3, padding='valid', name='conv_1', kernel_initializer=init('conv_1'))(x))
    return _pool_and_dense(x, stages, init, 128)


def _body_1d_grouped(x, stages, init):
    # The cochleagram is frequency x time; the 1-D net convolves over time with the 32
    # frequency rows as channels (SPEC §7: "time x frequency channels").
    x = stages['time_major'] = keras.layers.Permute((2, 1, 3), name='time_major')(x)
    x = stages['reshape_1d'] = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE), name='reshape_1d')(x)
    x = _relu_stage(stages, 'conv_0', keras.layers.Conv1D(
        128, 3, groups=8, padding='valid', name='conv_0', kernel_initializer=init('conv_0'))(x))
    x = _relu_stage(stages, 'conv_1', keras.layers.Conv1D(
        512, 3, groups=8, padding='valid', name='conv_1', kernel_initializer=init('conv_1'))(x))
    x = stages['reshape_2d'] = keras.layers.Reshape((28, 512, 1), name='reshape_2d')(x)
    return _pool_and_dense(x, stages, init, 512)


def _pool_and_dense(x, stages, init, units):
    """The tail both models share: maxpool 2, dropout .25, flatten, dense ReLU, dropout .5."""
    x = stages['max_pool'] = keras.layers.MaxPooling2D(2, name='max_pool')(x)
    x = keras.layers.Dropout(0.25, name='dropout_0')(x)
    x = stages['flatten'] = keras.layers.Flatten(name='flatten')(x)
    x = _relu_stage(stages, 'fc_intermediate', keras.layers.Dense(
        units, name='fc_intermediate', kernel_initializer=init('fc_intermediate'))(x))
    return keras.layers.Dropout(0.5, name='dropout_1')(x)


def build_kws(name, weights='random', seed=0):
    """Build ``kws_2d`` or ``kws_1d_grouped`` as a :class:`MetamerNetwork`.

    Args:
      name: ``'kws_2d'`` or ``'kws_1d_grouped'``.
      weights: ``'random'`` (seeded Keras-default initialisation; the
        normalisation is the identity: mean 0, variance 1), a ``.weights.h5``
        written by ``python -m model_metamers.train``, or ``'auto'`` /
        ``'default'`` for ``checkpoints/<name>.weights.h5`` (a missing file is
        a :class:`CheckpointError` naming the command that trains it).
      seed: seed of the random initialisation.
    """
    if name not in NETWORKS:
        raise ValueError('unknown keyword-spotting network %r; choose one of %s'
                         % (name, ', '.join(NETWORKS)))
    kind, path = _weights_plan(name, weights)
    init = _Init(seed)
    stages = collections.OrderedDict()
    waveform = keras.Input(shape=(SIGNAL_LENGTH,), name='waveform')
    x = _front_end(waveform, stages)
    body = _body_2d if NETWORKS[name] == '2d' else _body_1d_grouped
    x = body(x, stages, init)
    stages['logits'] = keras.layers.Dense(len(WORDS), name='logits',
                                          kernel_initializer=init('logits'))(x)
    info = {'architecture': NETWORKS[name], 'tasks': [TASK], 'weights': kind if kind == 'random' else path,
            'cochleagram_config': {k: v for k, v in COCHLEAGRAM_CONFIG.items()
                                   if k != 'erb_filter_kwargs'},
            'description': 'keyword-spotting CNN (%s) of the follow-up study, SPEC §7' % NETWORKS[name]}
    if kind == 'random':
        info['seed'] = int(seed)
    net = MetamerNetwork(
        name, waveform, stages, METAMER_LAYERS, list(WORDS), 'audio', relu_stages=RELU_STAGES,
        aliases={'visualization_input': 'cochleagram'}, logits_stage='logits',
        sample_rate=SAMPLE_RATE, default_learning_rate=0.001, default_iterations=1500,
        representation_stage='cochleagram', info=info)
    if kind == 'h5':
        checkpoints.load_weights_h5(net.model, path)
    return net


def build_kws_2d(weights='random', seed=0):
    """2-D keyword-spotting CNN (SPEC §7), 8 words; input 1 s at 16 kHz."""
    return build_kws('kws_2d', weights, seed)


def build_kws_1d_grouped(weights='random', seed=0):
    """1-D grouped-convolution keyword-spotting CNN (SPEC §7), 8 words; input 1 s at 16 kHz."""
    return build_kws('kws_1d_grouped', weights, seed)
