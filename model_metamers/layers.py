"""Small layers and ops shared by the networks and the synthesis engine."""

import keras
import numpy as np
import tensorflow as tf


@tf.custom_gradient
def modified_relu(x):
    """ReLU whose gradient is 1 everywhere (also where ``x <= 0``).

    Applied only to the matched layer during synthesis (Feather et al. 2019,
    §3.1), so that units silenced by the ReLU still pull the input towards the
    target. Forward values are bit-identical to ``tf.nn.relu``.
    """
    def grad(dy):
        return dy

    return tf.nn.relu(x), grad


def hanning_kernel(pool_size, normalize=False):
    """2-D Hanning kernel ``outer(w, w)``, ``w[n] = 0.5*(1 - cos(2*pi*n/(P-1)))`` (float64).

    ``pool_size`` is an int or a pair ``[P_h, P_w]``; a size of 1 gives a
    one-tap window. ``normalize`` divides by the sum (unit DC gain).
    """
    sizes = [pool_size, pool_size] if np.isscalar(pool_size) else list(pool_size)
    windows = []
    for p in sizes:
        if p > 1:
            windows.append(0.5 * (1 - np.cos(2.0 * np.pi * np.arange(p) / (p - 1))))
        else:
            windows.append(np.ones(1))
    kernel = np.outer(windows[0], windows[1])
    if normalize:
        kernel = kernel / kernel.sum()
    return kernel


class HanningPooling(keras.layers.Layer):
    """Per-channel low-pass (Hanning-window) filtering with a stride: anti-aliased pooling.

    Input / output ``[batch, H, W, C]`` -> ``[batch, ceil(H/s), ceil(W/s), C]``
    with SAME padding. Numerically the original's dense ``conv2d`` with kernel
    ``hanning ⊗ identity(C)``, computed as a depthwise convolution (about C
    times cheaper). ``normalize=False`` is the original default (SPEC §2).
    """

    def __init__(self, strides=2, pool_size=8, normalize=False, padding='SAME', name=None, **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.strides = int(strides)
        self.pool_size = pool_size
        self.normalize = bool(normalize)
        self.padding = padding
        self.kernel_2d = hanning_kernel(pool_size, normalize).astype(np.float32)

    def build(self, input_shape):
        channels = input_shape[-1]
        kernel = np.repeat(self.kernel_2d[:, :, None, None], channels, axis=2)
        self._kernel = tf.constant(kernel)  # [P, P, C, 1]
        self.built = True

    def call(self, x):
        return tf.nn.depthwise_conv2d(x, self._kernel, [1, self.strides, self.strides, 1],
                                      self.padding)

    def compute_output_shape(self, input_shape):
        def out(n):
            return None if n is None else -(-n // self.strides)
        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(strides=self.strides, pool_size=self.pool_size,
                      normalize=self.normalize, padding=self.padding)
        return config


def dense_hanning_pooling(x, strides=2, pool_size=8, normalize=False, padding='SAME'):
    """The original formulation: ``conv2d`` with the dense ``hanning ⊗ identity(C)`` kernel.

    Kept as the reference for tests and for the TF1-loop benchmark baseline.
    """
    channels = x.shape[-1]
    kernel = hanning_kernel(pool_size, normalize).astype(np.float32)
    dense = kernel[:, :, None, None] * np.eye(channels, dtype=np.float32)[None, None]
    return tf.nn.conv2d(x, tf.constant(dense), [1, strides, strides, 1], padding)
