"""Hanning pooling, the modified-gradient ReLU and the one-channel conv against independent references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from model_metamers.layers import (HanningPooling, SingleChannelConv2D, dense_hanning_pooling,
                                   hanning_kernel, modified_relu, single_channel_conv2d)
from tf1_reference.audio import original_hanning_pooling

# (strides, pool size) of the reduced-aliasing networks: pool_0_0 and the other three pools.
POOLS = [(3, 12), (2, 8)]


def _numpy_same_pool(x, kernel, stride):
    """Direct strided correlation with TF's SAME padding (extra pad at the end), float64."""
    batch, height, width, channels = x.shape
    ph, pw = kernel.shape

    def pads(n, k):
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        return out, total // 2, total - total // 2

    oh, top, bottom = pads(height, ph)
    ow, left, right = pads(width, pw)
    padded = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    out = np.zeros((batch, oh, ow, channels))
    for i in range(oh):
        for j in range(ow):
            patch = padded[:, i * stride:i * stride + ph, j * stride:j * stride + pw, :]
            out[:, i, j, :] = np.einsum('bhwc,hw->bc', patch, kernel)
    return out


@pytest.mark.parametrize('pool_size', [8, 12, [12, 8]])
def test_hanning_kernel_is_outer_product_of_numpy_hanning(pool_size):
    sizes = [pool_size, pool_size] if np.isscalar(pool_size) else pool_size
    expected = np.outer(np.hanning(sizes[0]), np.hanning(sizes[1]))
    np.testing.assert_allclose(hanning_kernel(pool_size), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(hanning_kernel(pool_size, normalize=True).sum(), 1.0, rtol=1e-12)


@pytest.mark.parametrize('impl', HanningPooling.IMPLS)
@pytest.mark.parametrize('strides,pool_size', POOLS)
@pytest.mark.parametrize('normalize', [False, True])
def test_hanning_pooling_equals_dense_original_formulation(strides, pool_size, normalize, impl):
    x = tf.constant(np.random.default_rng(strides).standard_normal((2, 37, 53, 5)), tf.float32)
    layer = HanningPooling(strides=strides, pool_size=pool_size, normalize=normalize, impl=impl)
    got = layer(x).numpy()
    dense = dense_hanning_pooling(x, strides, pool_size, normalize).numpy()
    original = original_hanning_pooling(x, strides, pool_size, normalize).numpy()
    assert got.shape == (2, -(-37 // strides), -(-53 // strides), 5)
    assert got.shape == tuple(layer.compute_output_shape(x.shape))
    scale = np.abs(original).max()
    np.testing.assert_allclose(got, original, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(dense, original, rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize('impl', HanningPooling.IMPLS)
@pytest.mark.parametrize('strides,pool_size', POOLS)
def test_hanning_pooling_matches_direct_numpy_correlation(strides, pool_size, impl):
    x = np.random.default_rng(7).standard_normal((1, 23, 30, 3)).astype(np.float32)
    got = HanningPooling(strides=strides, pool_size=pool_size, impl=impl)(tf.constant(x)).numpy()
    expected = _numpy_same_pool(x, np.outer(np.hanning(pool_size), np.hanning(pool_size)), strides)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_hanning_pooling_keeps_channels_separate():
    x = np.zeros((1, 16, 16, 4), np.float32)
    x[0, 8, 8, 2] = 1.0
    out = HanningPooling(strides=2, pool_size=8)(tf.constant(x)).numpy()
    assert np.all(out[..., [0, 1, 3]] == 0)
    grad_in = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(grad_in)
        total = tf.reduce_sum(HanningPooling(strides=2, pool_size=8)(grad_in)[..., 1])
    assert np.all(tape.gradient(total, grad_in).numpy()[..., [0, 2, 3]] == 0)
    assert out[..., 2].max() > 0


def test_modified_relu_forward_is_bit_identical_to_relu():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(10000).astype(np.float32) * 10
    values[:4] = [0.0, -0.0, np.float32(1e-45), -np.float32(1e-45)]
    x = tf.constant(values)
    got = modified_relu(x).numpy()
    expected = tf.nn.relu(x).numpy()
    assert got.dtype == expected.dtype
    assert got.tobytes() == expected.tobytes()


def test_modified_relu_gradient_is_one_everywhere():
    x = tf.constant([-3.0, -1e-30, -0.0, 0.0, 1e-30, 2.5], tf.float32)
    upstream = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        modified = tf.reduce_sum(modified_relu(x) * upstream)
        plain = tf.reduce_sum(tf.nn.relu(x) * upstream)
    np.testing.assert_array_equal(tape.gradient(modified, x).numpy(), upstream.numpy())
    # the ordinary ReLU would have passed nothing below (and at) zero
    np.testing.assert_array_equal(tape.gradient(plain, x).numpy(), [0, 0, 0, 0, 5, 6])


def _conv_and_grads(conv, x, kernel, r):
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = conv(x, kernel)
        loss = tf.reduce_sum(y * r)
    return [y.numpy()] + [g.numpy() for g in tape.gradient(loss, [x, kernel])]


# conv_0 of the reduced-aliasing word networks, odd/even kernels, 1x1, a batch of 3.
@pytest.mark.parametrize('x_shape,k_shape', [((1, 211, 400, 1), (7, 14, 1, 96)),
                                             ((3, 9, 11, 1), (4, 5, 1, 6)),
                                             ((2, 8, 8, 1), (3, 3, 1, 2)),
                                             ((1, 5, 6, 1), (1, 1, 1, 3))])
def test_single_channel_conv2d_equals_tf_conv_and_its_gradients(x_shape, k_shape):
    rng = np.random.default_rng(4)
    x = tf.constant(rng.standard_normal(x_shape).astype(np.float32))
    kernel = tf.constant(rng.standard_normal(k_shape).astype(np.float32))
    r = tf.constant(rng.standard_normal(x_shape[:3] + k_shape[3:]).astype(np.float32))
    ours = _conv_and_grads(single_channel_conv2d, x, kernel, r)
    tfs = _conv_and_grads(lambda a, b: tf.nn.conv2d(a, b, 1, 'SAME'), x, kernel, r)
    np.testing.assert_array_equal(ours[0], tfs[0])  # the same forward op
    if tf.config.list_logical_devices('GPU'):
        # The kernel gradient is TF's own op, but cuDNN may pick another algorithm per call
        # (seen on an H200: 8e-7 relative apart).
        np.testing.assert_allclose(ours[2], tfs[2], rtol=1e-5, atol=1e-5 * np.abs(tfs[2]).max())
    else:
        np.testing.assert_array_equal(ours[2], tfs[2])  # the kernel gradient is TF's own
    # The input gradient against float64 (TF's own float32 one is further from it).
    with tf.GradientTape() as tape:
        x64 = tf.cast(x, tf.float64)
        tape.watch(x64)
        loss = tf.reduce_sum(tf.nn.conv2d(x64, tf.cast(kernel, tf.float64), 1, 'SAME')
                             * tf.cast(r, tf.float64))
    exact = tape.gradient(loss, x64).numpy()
    err = np.linalg.norm(ours[1] - exact) / np.linalg.norm(exact)
    assert err < 1e-6
    assert err <= np.linalg.norm(tfs[1] - exact) / np.linalg.norm(exact) * 1.5


def test_single_channel_conv_layer_falls_back_outside_its_case():
    x = tf.constant(np.random.default_rng(0).standard_normal((1, 12, 15, 1)).astype(np.float32))
    for kwargs in (dict(strides=3), dict(padding='valid'), dict(dilation_rate=2)):
        ours = SingleChannelConv2D(4, (3, 5), kernel_initializer='glorot_uniform', **kwargs)
        ours.build(x.shape)
        ref = keras.layers.Conv2D(4, (3, 5), **kwargs)
        ref.build(x.shape)
        ref.set_weights(ours.get_weights())
        np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), atol=1e-6)
    layer = SingleChannelConv2D(4, (3, 5), padding='same')
    layer.build(x.shape)
    ref = keras.layers.Conv2D(4, (3, 5), padding='same')
    ref.build(x.shape)
    ref.set_weights(layer.get_weights())
    grads = []
    for conv in (layer, ref):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(conv(x) ** 2)
        grads.append(tape.gradient(loss, [x] + [v.value for v in conv.trainable_weights]))
    # The custom-gradient path: gradients for the input and both weights (it trains).
    for ours, theirs in zip(*grads):
        assert ours is not None
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
