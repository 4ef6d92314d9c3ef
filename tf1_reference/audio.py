"""An independent TF1 (graph mode, ``tf.layers``) reference of the audio networks, for tests.

Written from the facts of the original code, not from ``model_metamers``:
everything is built inside ``tf.variable_scope('brain_network')`` with
``tf.layers`` (the legacy implementations in ``tf_keras``), convolutions are
pre-ReLU tensors named ``conv_<i>`` followed by ``relu_<i>``, Hanning pooling
is the original's dense ``conv2d`` with a ``[C, C, P, P]`` kernel transposed to
``[P, P, C, C]``, and output heads are ``fc_top_<i>`` for the sorted task keys.
The tensors in the returned dict use the original's names.
"""

import warnings

import numpy as np
import tensorflow as tf
from tf_keras.src.legacy_tf_layers import convolutional, core, normalization, pooling

WORD_KEY = '/stimuli/word_int'
AUDIOSET_KEY = '/stimuli/labels_binary_via_int'


def original_hanning_kernel(pool_size, normalize=False):
    """2-D Hanning window via numpy's own ``np.hanning`` (float32)."""
    window = np.hanning(pool_size)
    kernel = np.outer(window, window)
    if normalize:
        kernel = kernel / kernel.sum()
    return kernel.astype(np.float32)


def original_hanning_pooling(x, stride, pool_size, normalize=False, name=None):
    """The original dense formulation: ``conv2d`` with ``kernel ⊗ identity(C)``."""
    channels = x.shape[-1]
    kernel = original_hanning_kernel(pool_size, normalize)
    dense = kernel[None, None, :, :] * np.eye(channels)[:, :, None, None]  # [C, C, P, P]
    dense = np.transpose(dense, (2, 3, 0, 1)).astype(np.float32)  # [P, P, C_in, C_out]
    return tf.nn.conv2d(x, tf.constant(dense), [1, stride, stride, 1], 'SAME', name=name)


def brain_network(cochleagram, architecture, n_classes, avgpool_padding='SAME',
                  hanning_normalize=False):
    """Build the network on ``cochleagram`` ``[batch, 211, 400, 1]`` in the current graph.

    ``n_classes``: ``{task key: number of classes}``. Variables are shared
    (AUTO_REUSE) so several architectures can be built on one checkpoint.
    Returns ``{original layer name: tensor}``; ``fc_top`` is a dict by task key.
    """
    nets = {}

    def keep(name, tensor):
        nets[name] = tensor
        return tensor

    def conv(x, index, filters, kernel_size, stride):
        x = keep('conv_%d' % index, convolutional.conv2d(
            x, filters, kernel_size, strides=stride, padding='same', name='conv_%d' % index))
        return keep('relu_%d' % index, tf.nn.relu(x))

    def batch_norm(x, index):
        return keep('batch_norm_%d' % index, normalization.batch_normalization(
            x, training=False, trainable=False, name='batch_norm_%d' % index))

    def hpool(x, name, stride, size):
        return keep(name, original_hanning_pooling(x, stride, size, hanning_normalize))

    with tf.compat.v1.variable_scope('brain_network', reuse=tf.compat.v1.AUTO_REUSE), \
            warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*is deprecated', category=UserWarning)
        x = batch_norm(cochleagram, 0)
        if architecture == 'aliased':
            x = conv(x, 0, 96, [7, 14], 3)
            x = keep('pool_0', pooling.max_pooling2d(x, [2, 5], 2, padding='same'))
        else:
            x = conv(x, 0, 96, [7, 14], 1)
            x = hpool(x, 'pool_0_0', 3, 12)
            x = hpool(x, 'pool_0_1', 2, 8)
        x = batch_norm(x, 1)
        if architecture == 'aliased':
            x = conv(x, 1, 256, [4, 8], 2)
            x = keep('pool_1', pooling.max_pooling2d(x, [2, 5], 2, padding='same'))
        else:
            x = conv(x, 1, 256, [4, 8], 1)
            x = hpool(x, 'pool_1_0', 2, 8)
            x = hpool(x, 'pool_1_1', 2, 8)
        x = batch_norm(x, 2)
        x = conv(x, 2, 512, [2, 5], 1)
        x = conv(x, 3, 1024, [2, 5], 1)
        x = conv(x, 4, 512, [2, 5], 1)
        x = keep('avg_pool', tf.nn.avg_pool2d(x, [1, 2, 5, 1], [1, 2, 2, 1], avgpool_padding))
        x = keep('flatten', core.flatten(x))
        x = keep('fc_intermediate', core.dense(x, 4096, name='fc_intermediate'))
        x = keep('relu_fc_intermediate', tf.nn.relu(x))
        x = keep('dropout', core.dropout(x, rate=0.5, training=False))
        nets['fc_top'] = {key: core.dense(x, n_classes[key], name='fc_top_%d' % i)
                          for i, key in enumerate(sorted(n_classes))}
    return nets


def randomise_variables(session, rng):
    """Initialise every variable with random, non-trivial values (incl. batch-norm statistics).

    Kernels: He-scaled uniform (keeps activations O(1) through the ReLUs);
    biases, beta, moving_mean: small normal; gamma, moving_variance: positive.
    Values are fed straight into each variable's initializer, so no separate
    (slow, for the dense kernel) ``global_variables_initializer`` run is needed.
    Non-float variables (``global_step``) get their own initial value.
    """
    for var in tf.compat.v1.global_variables():
        shape = var.shape.as_list()
        leaf = var.op.name.split('/')[-1]
        if var.dtype.base_dtype != tf.float32:
            session.run(var.initializer)
            continue
        if leaf == 'kernel':
            limit = np.float32(np.sqrt(6.0 / np.prod(shape[:-1])))
            value = rng.random(shape, dtype=np.float32)
            value *= 2 * limit
            value -= limit
        elif leaf in ('bias', 'beta'):
            value = 0.1 * rng.standard_normal(shape, dtype=np.float32)
        elif leaf == 'moving_mean':
            value = 0.3 * rng.standard_normal(shape, dtype=np.float32)
        elif leaf in ('gamma', 'moving_variance'):
            value = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            value = rng.standard_normal(shape, dtype=np.float32)
        var.load(value, session)
