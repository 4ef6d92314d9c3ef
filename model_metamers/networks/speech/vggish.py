"""VGGish (Hershey et al. 2017), the AudioSet embedding network, from the waveform.

The network is the TF-Slim definition ``vggish_slim.py`` of the AudioSet
release (scope ``vggish/``): 3x3 stride-1 SAME convolutions with ReLU and 2x2
stride-2 SAME max-pools, then two 4096-unit ReLU layers and a linear 128-D
embedding::

    conv1 64, pool1, conv2 128, pool2, conv3/conv3_1 256, conv3/conv3_2 256, pool3,
    conv4/conv4_1 512, conv4/conv4_2 512, pool4, flatten (6*4*512 = 12288),
    fc1/fc1_1 4096, fc1/fc1_2 4096, fc2 128 (no activation: the embedding)

Checkpoint variables are ``vggish/<scope>/weights`` and ``.../biases``
(:data:`CHECKPOINT_NAMES`). The front end (:mod:`.vggish_frontend`) turns a
``[batch, 40000]`` 20 kHz waveform into two 0.96 s log-mel examples
``[batch, 2, 96, 64, 1]`` (stage ``log_mel``). The network runs on the
examples as a batch of ``batch*2`` and every stage is reshaped back to
``[batch, 2, ...]``, so a stage holds both examples of one stimulus and
feature counts are twice those of one VGGish example.

VGGish has no classifier: ``logits_stage`` is the embedding, ``class_names``
is empty and ``info['has_classes']`` is False; validation of VGGish metamers
uses the Spearman criterion only (no "same class" test). The release's PCA /
8-bit quantisation of embeddings is :func:`postprocess_embeddings` (numpy, not
part of the differentiable model).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.networks.speech import vggish_frontend as frontend
from model_metamers.networks.base import MetamerNetwork
from model_metamers.networks.weights.public_checkpoints import (EXTRA_FILES, PUBLIC_CHECKPOINTS,
                                                        VGGISH_PCA_PARAMS_URL)
from model_metamers.networks.weights.speech_weights import load_weights, resolve_name_map, resolve_weights

NAME = 'vggish'
INIT_STDDEV = 0.01           # vggish_params.INIT_STDDEV (truncated normal), biases 0
EMBEDDING_SIZE = 128
QUANTIZE_MIN_VAL = -2.0
QUANTIZE_MAX_VAL = 2.0
PCA_EIGEN_VECTORS_NAME = 'pca_eigen_vectors'
PCA_MEANS_NAME = 'pca_means'

# Layers with weights, in order: (Keras layer / stage name, slim scope, kind, units).
ARCHITECTURE = (
    ('conv1', 'vggish/conv1', 'conv', 64),
    ('pool1', None, 'pool', None),
    ('conv2', 'vggish/conv2', 'conv', 128),
    ('pool2', None, 'pool', None),
    ('conv3_1', 'vggish/conv3/conv3_1', 'conv', 256),
    ('conv3_2', 'vggish/conv3/conv3_2', 'conv', 256),
    ('pool3', None, 'pool', None),
    ('conv4_1', 'vggish/conv4/conv4_1', 'conv', 512),
    ('conv4_2', 'vggish/conv4/conv4_2', 'conv', 512),
    ('pool4', None, 'pool', None),
    ('fc1_1', 'vggish/fc1/fc1_1', 'fc', 4096),
    ('fc1_2', 'vggish/fc1/fc1_2', 'fc', 4096),
    ('embedding', 'vggish/fc2', 'linear', EMBEDDING_SIZE),
)

# '<Keras layer>/<variable>' -> checkpoint variable (vggish_model.ckpt).
CHECKPOINT_NAMES = {}
for _stage, _scope, _kind, _ in ARCHITECTURE:
    if _scope is not None:
        CHECKPOINT_NAMES['%s/kernel' % _stage] = _scope + '/weights'
        CHECKPOINT_NAMES['%s/bias' % _stage] = _scope + '/biases'

METAMER_LAYERS = ['log_mel', 'conv1', 'pool1', 'conv2', 'pool2', 'conv3_1', 'conv3_2', 'pool3',
                  'conv4_1', 'conv4_2', 'pool4', 'fc1_1', 'fc1_2', 'embedding']

# The slim scope names (and the release's tensor names) are accepted as well.
ALIASES = {'visualization_input': 'log_mel', 'input_features': 'log_mel',
           'vggish/input_features': 'log_mel', 'fc2': 'embedding', 'vggish/embedding': 'embedding'}
for _stage, _scope, _kind, _ in ARCHITECTURE:
    if _scope is not None and _stage != 'embedding':
        ALIASES[_scope] = _stage
        ALIASES[_scope[len('vggish/'):]] = _stage
for _pool in ('pool1', 'pool2', 'pool3', 'pool4'):
    ALIASES['vggish/' + _pool] = _pool

__all__ = ['ARCHITECTURE', 'CHECKPOINT_NAMES', 'EXTRA_FILES', 'METAMER_LAYERS',
           'PUBLIC_CHECKPOINTS', 'PCAParamsError', 'build_vggish', 'load_pca_params',
           'postprocess_embeddings']


class PCAParamsError(UserError, ValueError):
    """A PCA parameter file that is missing or has the wrong contents."""


class MergeExamples(keras.layers.Layer):
    """``[batch, n, ...]`` -> ``[batch*n, ...]`` (examples of a stimulus become batch entries)."""

    def call(self, x):
        return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] * input_shape[1]
        return (batch,) + tuple(input_shape[2:])


class SplitExamples(keras.layers.Layer):
    """``[batch*n, ...]`` -> ``[batch, n, ...]``, the inverse of :class:`MergeExamples`."""

    def __init__(self, n_examples, **kwargs):
        super().__init__(**kwargs)
        self.n_examples = int(n_examples)

    def call(self, x):
        return tf.reshape(x, tf.concat([[-1, self.n_examples], tf.shape(x)[1:]], axis=0))

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // self.n_examples
        return (batch, self.n_examples) + tuple(input_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(n_examples=self.n_examples)
        return config


def _initializers(seed, index):
    kernel = keras.initializers.TruncatedNormal(stddev=INIT_STDDEV, seed=seed * 1000 + index)
    return kernel, keras.initializers.Zeros()


def _build_model(sample_rate, input_length, seed):
    """Keras model waveform -> {stage: tensor} and the ReLU pre-activation map."""
    waveform = keras.Input(shape=(input_length,), name='waveform')
    log_mel = frontend.VGGishLogMel(sample_rate=sample_rate, name='log_mel')(waveform)
    n_examples = log_mel.shape[1]
    stages = {'log_mel': log_mel}
    relu_stages = {}

    def split(tensor, stage):
        stages[stage] = SplitExamples(n_examples, name='split_' + stage)(tensor)

    net = MergeExamples(name='merge_examples')(log_mel)
    for index, (stage, _scope, kind, units) in enumerate(ARCHITECTURE):
        if kind == 'pool':
            net = keras.layers.MaxPooling2D(2, 2, padding='same', name=stage)(net)
            split(net, stage)
            continue
        kernel_init, bias_init = _initializers(seed, index)
        if kind == 'conv':
            pre = keras.layers.Conv2D(units, 3, strides=1, padding='same', name=stage,
                                      kernel_initializer=kernel_init, bias_initializer=bias_init)(net)
        else:
            if len(net.shape) > 2:
                net = keras.layers.Flatten(name='flatten')(net)
            pre = keras.layers.Dense(units, name=stage, kernel_initializer=kernel_init,
                                     bias_initializer=bias_init)(net)
        if kind == 'linear':
            net = pre
            split(net, stage)
            continue
        split(pre, stage + '_preact')
        net = keras.layers.ReLU(name=stage + '_relu')(pre)
        split(net, stage)
        relu_stages[stage] = [stage + '_preact']
    return waveform, stages, relu_stages


def build_vggish(weights='random', seed=0, sample_rate=20000, input_length=40000, name_map=None):
    """VGGish as a :class:`MetamerNetwork` on ``[batch, input_length]`` waveforms.

    Args:
      weights: ``'random'`` (truncated normal, stddev 0.01, seeded), the
        released ``vggish_model.ckpt`` (TF1 V1 single file) or any TF
        checkpoint with the same variable names, or a converted ``*.weights.h5``.
      seed: seed of the random initialisation.
      sample_rate: Hz of the input waveform (resampled to 16 kHz in the graph).
      input_length: samples per stimulus (40000 = 2 s at 20 kHz -> 2 examples).
      name_map: overrides of :data:`CHECKPOINT_NAMES` entries (dict or JSON file path).

    Returns:
      A :class:`MetamerNetwork`; stages are ``[batch, n_examples, ...]``. It has no
      ``representation_stage``: the paper optimised VGGish metamers from the waveform.
    """
    kind, path = resolve_weights(weights, NAME, 'VGGish TF1')
    names = resolve_name_map(CHECKPOINT_NAMES, name_map)
    inputs, stages, relu_stages = _build_model(sample_rate, input_length, seed)
    network = MetamerNetwork(
        NAME, inputs, stages, METAMER_LAYERS, class_names=[], modality='audio',
        relu_stages=relu_stages, aliases=ALIASES, logits_stage='embedding',
        sample_rate=sample_rate, default_learning_rate=0.01, representation_stage=None,
        info={'has_classes': False,
              'build_options': {'sample_rate': sample_rate, 'input_length': input_length},
              'validation': 'spearman_only: VGGish has no classifier, its logits_stage is the '
                            '128-D embedding',
              'n_examples': int(stages['log_mel'].shape[1]),
              'model_sample_rate': frontend.SAMPLE_RATE,
              'resampling': 'fft',
              'public_checkpoint': PUBLIC_CHECKPOINTS[NAME],
              'pca_params': VGGISH_PCA_PARAMS_URL})
    network.info.update(load_weights(network.model, kind, path, names))
    return network


def load_pca_params(path_or_arrays):
    """``(pca_eigen_vectors [128, 128], pca_means [128])`` float64 from ``vggish_pca_params.npz``.

    ``path_or_arrays`` is the file's path or a mapping with the same two keys.
    """
    if isinstance(path_or_arrays, (str, os.PathLike)):
        path = os.path.expanduser(str(path_or_arrays))
        if not os.path.isfile(path):
            raise PCAParamsError('no PCA parameters at %s; download %s'
                                 % (path, VGGISH_PCA_PARAMS_URL))
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    else:
        arrays = dict(path_or_arrays)
    missing = [k for k in (PCA_EIGEN_VECTORS_NAME, PCA_MEANS_NAME) if k not in arrays]
    if missing:
        raise PCAParamsError('PCA parameters lack %s (have %s); use the release\'s '
                             'vggish_pca_params.npz' % (', '.join(missing), ', '.join(sorted(arrays))))
    vectors = np.asarray(arrays[PCA_EIGEN_VECTORS_NAME], np.float64)
    means = np.asarray(arrays[PCA_MEANS_NAME], np.float64).reshape(-1)
    if vectors.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE) or means.shape != (EMBEDDING_SIZE,):
        raise PCAParamsError('PCA parameters have shapes %s and %s, expected (128, 128) and (128,); '
                             'use the release\'s vggish_pca_params.npz'
                             % (vectors.shape, np.shape(arrays[PCA_MEANS_NAME])))
    return vectors, means


def postprocess_embeddings(embeddings, pca_params):
    """The release's PCA (with whitening) and 8-bit quantisation of embeddings (numpy).

    ``embeddings``: ``[..., 128]`` (e.g. the ``embedding`` stage
    ``[batch, 2, 128]``). Returns uint8 of the same shape:
    ``uint8((clip(V @ (e - mu), -2, 2) + 2) * 255 / 4)`` (truncation, as the
    release's ``astype(np.uint8)``). Not differentiable, not used in synthesis.
    """
    vectors, means = pca_params if isinstance(pca_params, tuple) else load_pca_params(pca_params)
    embeddings = np.asarray(embeddings, np.float64)
    if embeddings.shape[-1:] != (EMBEDDING_SIZE,):
        raise ValueError('embeddings must end in %d features, got shape %s'
                         % (EMBEDDING_SIZE, embeddings.shape))
    projected = (embeddings - means) @ vectors.T
    clipped = np.clip(projected, QUANTIZE_MIN_VAL, QUANTIZE_MAX_VAL)
    scaled = (clipped - QUANTIZE_MIN_VAL) * (255.0 / (QUANTIZE_MAX_VAL - QUANTIZE_MIN_VAL))
    return scaled.astype(np.uint8)
