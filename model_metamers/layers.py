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
    """2-D Hanning kernel ``outer(w_h, w_w)`` (float64), see :func:`hanning_window`.

    ``pool_size`` is an int or a pair ``[P_h, P_w]``; ``normalize`` divides by the
    sum (unit DC gain).
    """
    sizes = [pool_size, pool_size] if np.isscalar(pool_size) else list(pool_size)
    kernel = np.outer(hanning_window(sizes[0]), hanning_window(sizes[1]))
    return kernel / kernel.sum() if normalize else kernel


def hanning_window(pool_size, normalize=False):
    """1-D Hanning window ``w[n] = 0.5*(1 - cos(2*pi*n/(P-1)))`` (float64; ``[1]`` for P=1).

    With ``normalize`` it sums to one, so ``outer(w, w)`` is the normalised 2-D kernel.
    """
    if pool_size > 1:
        window = 0.5 * (1 - np.cos(2.0 * np.pi * np.arange(pool_size) / (pool_size - 1)))
    else:
        window = np.ones(1)
    return window / window.sum() if normalize else window


def strided_filter_matrix(window, n_in, stride, padding='SAME'):
    """``[n_out, n_in]`` matrix applying a 1-D correlation with ``window`` and ``stride``.

    Row ``i`` holds ``window[k]`` at input ``i*stride + k - pad_before`` with TF's
    SAME (or VALID) padding rule, so ``M @ x`` equals the strided convolution.
    """
    taps = len(window)
    if padding == 'SAME':
        n_out = -(-n_in // stride)
        before = max((n_out - 1) * stride + taps - n_in, 0) // 2
    elif padding == 'VALID':
        n_out = (n_in - taps) // stride + 1
        before = 0
    else:
        raise ValueError("padding must be 'SAME' or 'VALID', got %r" % (padding,))
    matrix = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        for k in range(taps):
            j = i * stride + k - before
            if 0 <= j < n_in:
                matrix[i, j] = window[k]
    return matrix


class HanningPooling(keras.layers.Layer):
    """Per-channel low-pass (Hanning-window) filtering with a stride: anti-aliased pooling.

    Input / output ``[batch, H, W, C]`` -> ``[batch, ceil(H/s), ceil(W/s), C]``
    with SAME padding. Numerically the original's dense ``conv2d`` with kernel
    ``hanning ⊗ identity(C)`` (to float32 round-off). ``normalize=False`` is the
    original default (SPEC §2).

    ``impl='matmul'`` (default) uses that the 2-D kernel ``outer(w, w)`` is
    separable: two strided 1-D filterings, each a multiplication by a fixed
    banded ``[n_out, n_in]`` matrix, run as batched GEMMs. It does ~17x more
    multiplications than a direct 12-tap filter but runs ~5x faster than TF's
    CPU depthwise kernel forward+backward, and fuses well under XLA (where the
    depthwise kernel is ~20x slower). ``impl='depthwise'`` is the direct form.
    """

    IMPLS = ('matmul', 'depthwise')

    def __init__(self, strides=2, pool_size=8, normalize=False, padding='SAME', impl='matmul',
                 name=None, **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        if impl not in self.IMPLS:
            raise ValueError('impl must be one of %s, got %r' % (self.IMPLS, impl))
        self.strides = int(strides)
        self.pool_size = pool_size
        self.normalize = bool(normalize)
        self.padding = padding
        self.impl = impl
        self.kernel_2d = hanning_kernel(pool_size, normalize).astype(np.float32)

    def build(self, input_shape):
        _, height, width, channels = input_shape
        if self.impl == 'depthwise' or height is None or width is None:
            kernel = np.repeat(self.kernel_2d[:, :, None, None], channels, axis=2)
            self._kernel = tf.constant(kernel)  # [P, P, C, 1]
            self._rows = self._cols = None
        else:
            sizes = [self.pool_size] * 2 if np.isscalar(self.pool_size) else list(self.pool_size)
            self._rows = tf.constant(strided_filter_matrix(
                hanning_window(sizes[0], self.normalize), height, self.strides, self.padding)
                .astype(np.float32))
            self._cols = tf.constant(strided_filter_matrix(
                hanning_window(sizes[1], self.normalize), width, self.strides, self.padding)
                .astype(np.float32))
        self.built = True

    def call(self, x):
        if self._rows is None:
            return tf.nn.depthwise_conv2d(x, self._kernel, [1, self.strides, self.strides, 1],
                                          self.padding)
        batch = tf.shape(x)[0]
        _, height, width, channels = x.shape
        rows_out, cols_out = self._rows.shape[0], self._cols.shape[0]
        # Along H: [Ho, H] x [B, H, W*C] (matmul broadcasts the matrix over the batch).
        y = tf.matmul(self._rows, tf.reshape(x, [batch, height, width * channels]))
        # Along W: [Wo, W] x [B*Ho, W, C].
        y = tf.matmul(self._cols, tf.reshape(y, [batch * rows_out, width, channels]))
        return tf.reshape(y, [batch, rows_out, cols_out, channels])

    def compute_output_shape(self, input_shape):
        def out(n):
            if n is None:
                return None
            if self.padding == 'VALID':
                size = self.pool_size if np.isscalar(self.pool_size) else self.pool_size[0]
                return (n - size) // self.strides + 1
            return -(-n // self.strides)
        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(strides=self.strides, pool_size=self.pool_size, normalize=self.normalize,
                      padding=self.padding, impl=self.impl)
        return config


def dense_hanning_pooling(x, strides=2, pool_size=8, normalize=False, padding='SAME'):
    """The original formulation: ``conv2d`` with the dense ``hanning ⊗ identity(C)`` kernel.

    Kept as the reference for tests and for the TF1-loop benchmark baseline.
    """
    channels = x.shape[-1]
    kernel = hanning_kernel(pool_size, normalize).astype(np.float32)
    dense = kernel[:, :, None, None] * np.eye(channels, dtype=np.float32)[None, None]
    return tf.nn.conv2d(x, tf.constant(dense), [1, strides, strides, 1], padding)


def single_channel_conv2d(x, kernel):
    """Stride-1 SAME convolution of a one-channel image, with a GEMM input gradient.

    ``x`` ``[batch, H, W, 1]``, ``kernel`` ``[KH, KW, 1, C]`` -> ``[batch, H, W, C]``; the
    forward op is ``tf.nn.conv2d`` itself. Backwards, the gradient with respect to ``x``
    contracts the ``C`` output channels with the kernel in one matrix product
    (``[KH*KW, C] @ [C, batch*H*W]``) and sums the ``KH*KW`` shifted planes: the same
    products as ``Conv2DBackpropInput`` in another summation order. oneDNN has no fast kernel
    for a one-channel input gradient (on 2 CPU cores 120 ms for conv_0 of the word networks,
    6x this form). The kernel gradient is TF's own (``Conv2DBackpropFilter``).
    """
    kh, kw, _, channels = kernel.shape
    height, width = x.shape[1], x.shape[2]
    # TF's SAME rule for stride 1: the odd extra row/column of padding goes after.
    top, left = (kh - 1) // 2, (kw - 1) // 2

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            taps = tf.reshape(kernel, [kh * kw, channels])
            planes = tf.matmul(taps, tf.reshape(dy, [-1, channels]), transpose_b=True)
            planes = tf.reshape(planes, [kh, kw, -1, height, width])
            # dx[i, j] = sum_ab dy[i - a + top, j - b + left] . kernel[a, b]: pad so that
            # every shifted window is an in-range slice.
            planes = tf.pad(planes, [[0, 0], [0, 0], [0, 0], [kh - 1 - top, top],
                                     [kw - 1 - left, left]])
            cols = tf.add_n([planes[:, b, :, :, kw - 1 - b:kw - 1 - b + width] for b in range(kw)])
            dx = tf.add_n([cols[a, :, kh - 1 - a:kh - 1 - a + height, :] for a in range(kh)])
            dkernel = tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(kernel), out_backprop=dy, strides=[1, 1, 1, 1],
                padding='SAME')
            return dx[..., None], dkernel

        return tf.nn.conv2d(x, kernel, 1, 'SAME'), grad

    return conv(x, kernel)


@keras.saving.register_keras_serializable(package='model_metamers')
class SingleChannelConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` whose stride-1 SAME case on one input channel runs
    :func:`single_channel_conv2d` (same forward op and weights, faster input gradient)."""

    def convolution_op(self, inputs, kernel):
        if (inputs.shape[-1] == 1 and tuple(self.strides) == (1, 1) and self.padding == 'same'
                and tuple(self.dilation_rate) == (1, 1) and self.data_format == 'channels_last'
                and inputs.shape[1] is not None and inputs.shape[2] is not None):
            return single_channel_conv2d(inputs, tf.convert_to_tensor(kernel))
        return super().convolution_op(inputs, kernel)
