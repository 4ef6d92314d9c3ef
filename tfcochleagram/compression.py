"""Amplitude compressions applied to the rectified, downsampled envelopes."""

import tensorflow as tf

COMPRESSIONS = ('none', 'point3', 'clipped_point3', 'dB', 'linear', 'custom')


@tf.custom_gradient
def clipped_point3(x):
    """``relu(x) ** 0.3`` with the original's clipped, NaN-free gradient.

    Forward: ``relu(x)^0.3``. Backward: ``dy * g`` with
    ``g = clip(0.3 * relu(x)^-0.7, -1, 1)`` and ``g = 1`` where it is NaN.
    At ``x <= 0`` the power gives +inf, clipped to 1, so zeros pass the
    incoming gradient unchanged: that is the original behaviour and is kept.
    """
    rectified = tf.nn.relu(x)
    y = tf.pow(rectified, 0.3)

    def grad(dy):
        g = 0.3 * tf.pow(rectified, -0.7)
        g = tf.where(tf.math.is_nan(g), tf.ones_like(g), tf.clip_by_value(g, -1.0, 1.0))
        return dy * g

    return y, grad


def _log10(x):
    return tf.math.log(x) / tf.math.log(tf.constant(10, dtype=x.dtype))


def compress(x, compression='clipped_point3', linear_params=None,
             custom_compression_op=None, scale_before_compression=None, stages=None):
    """Apply ``scale_before_compression`` then the named compression.

    Args:
      x: ``[batch, n_filters, time, 1]`` float32 envelopes (non-negative).
      compression: one of :data:`COMPRESSIONS`.
      linear_params: ``[m, b]`` for ``compression='linear'`` (``m*x + b``);
        ``m`` and ``b`` may broadcast per filter, e.g. shape ``[1, n_filters, 1, 1]``.
      custom_compression_op: callable ``f(x) -> y`` for ``compression='custom'``.
      scale_before_compression: optional float multiplier applied first.
      stages: optional dict that receives the intermediate tensors by name.

    Returns:
      The compressed cochleagram, same shape as ``x``.
    """
    if stages is None:
        stages = {}
    if scale_before_compression is not None:
        # The original multiplies by a float32 constant, so the scale is rounded first.
        x = tf.multiply(x, tf.constant(scale_before_compression, dtype=x.dtype))
        stages['cochleagram_no_compression_scaled'] = x

    if compression == 'point3':
        return tf.pow(x, 0.3)
    if compression == 'clipped_point3':
        return clipped_point3(x)
    if compression == 'none':
        return x
    if compression == 'dB':
        # QUIRK kept from the original: the log is divided by the maximum
        # (not the signal by its maximum before the log), then floored at -60.
        unclipped = 20 * _log10(x) / tf.reduce_max(x)
        stages['cochleagram_noclipped'] = unclipped
        return tf.maximum(unclipped, -60)
    if compression == 'linear':
        if linear_params is None or len(linear_params) != 2:
            raise ValueError("compression='linear' needs linear_params=[m, b] (y = m*x + b)")
        return linear_params[0] * x + linear_params[1]
    if compression == 'custom':
        if custom_compression_op is None:
            raise ValueError("compression='custom' needs custom_compression_op, a callable f(x) -> y")
        return custom_compression_op(x)
    raise ValueError('unknown compression %r; choose one of %s' % (compression, ', '.join(COMPRESSIONS)))
