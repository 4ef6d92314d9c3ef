"""Signal-processing pieces the speech front ends share (VGGish log-mel, DeepSpeech 0.5.1 MFCC).

All numpy helpers return float64; the front ends cast to float32 constants.
"""

import numpy as np
import tensorflow as tf

# HTK mel scale, m = 1127 ln(1 + f / 700) (VGGish's mel_features and TF's Mfcc op).
MEL_BREAK_HZ = 700.0
MEL_HIGH_Q = 1127.0


def htk_mel(frequencies_hz):
    """HTK mel scale: ``1127 ln(1 + f / 700)`` (float64, same shape as the input)."""
    return MEL_HIGH_Q * np.log1p(np.asarray(frequencies_hz, np.float64) / MEL_BREAK_HZ)


def periodic_hann(length):
    """``0.5 - 0.5 cos(2 pi n / length)``, n = 0..length-1 (float64)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def magnitude(spectrum):
    """``|spectrum|`` with a finite gradient (zero) where the spectrum is exactly 0.

    ``tf.abs`` of a complex zero has an undefined (NaN) gradient; the silent
    stretches of a waveform (and the padding of a batch) hit it.
    """
    power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
    positive = power > 0
    safe = tf.where(positive, power, tf.ones_like(power))
    return tf.where(positive, tf.sqrt(safe), tf.zeros_like(power))
