"""Differentiable sample-rate conversion for the public speech models (VGGish, DeepSpeech).

Our stimuli are 2 s at 20 kHz; VGGish and DeepSpeech were trained at 16 kHz.
The conversion is exact band-limited resampling via the FFT of the whole clip
(the clip is treated as one period of a periodic signal), with the same
conventions as ``scipy.signal.resample``: keep the bins below the new Nyquist,
fold the two old bins at the new Nyquist frequency into the one new Nyquist
bin, inverse FFT at the new length, scale by ``n_out / n_in``.

Why FFT and not a polyphase FIR: it is exact for a band-limited periodic
signal, has no filter design choices (cut-off, transition band, taps), costs
one rFFT and one inverse rFFT, and its gradient is the exact adjoint. The
price is circular wrap-around at the clip edges (the end of the clip leaks
into the first few ms and vice versa), which is harmless for metamer matching
because the same front end is applied to the natural sound and the metamer.
"""

import keras
import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError


class ResampleError(UserError, ValueError):
    """A length / rate combination that does not give a whole number of output samples."""


def resampled_length(n_samples, rate_in, rate_out):
    """Output samples for ``n_samples`` at ``rate_in`` Hz converted to ``rate_out`` Hz.

    Raises :class:`ResampleError` unless the result is a whole number.
    """
    n_out = n_samples * rate_out / float(rate_in)
    if n_samples <= 0 or abs(n_out - round(n_out)) > 1e-9:
        raise ResampleError(
            '%d samples at %g Hz do not give a whole number of samples at %g Hz (%.3f); '
            'give a signal whose duration is a multiple of 1/gcd of the two rates'
            % (n_samples, rate_in, rate_out, n_out))
    return int(round(n_out))


def fft_resample(waveform, n_out):
    """Band-limited resampling of ``waveform`` ``[batch, n_in]`` float32 to ``[batch, n_out]``.

    Numerically ``scipy.signal.resample(waveform, n_out, axis=-1)`` in float32
    (downsampling; upsampling is supported but not used by the networks).
    Differentiable.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    n_in = int(waveform.shape[-1])
    if n_out == n_in:
        return waveform
    spectrum = tf.signal.rfft(waveform, fft_length=[n_in])
    n_keep = min(n_in, n_out)
    kept = spectrum[..., :n_keep // 2 + 1]
    if n_keep % 2 == 0:
        # The new Nyquist bin stands for both old bins at +-f_nyq (complex
        # conjugates): doubling it for downsampling, halving it for
        # upsampling, as scipy.signal.resample does for real input.
        factor = 2.0 if n_out < n_in else 0.5
        scale = np.ones(n_keep // 2 + 1, np.complex64)
        scale[-1] = factor
        kept = kept * tf.constant(scale)
    if n_out > n_in:
        pad = n_out // 2 + 1 - (n_keep // 2 + 1)
        kept = tf.pad(kept, [[0, 0]] * (len(kept.shape) - 1) + [[0, pad]])
    out = tf.signal.irfft(kept, fft_length=[n_out])
    return out * (float(n_out) / float(n_in))


class FFTResample(keras.layers.Layer):
    """Keras layer: waveform ``[batch, n_in]`` at ``rate_in`` Hz -> ``[batch, n_out]`` at ``rate_out`` Hz."""

    def __init__(self, rate_in, rate_out, name='resample', **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.rate_in = float(rate_in)
        self.rate_out = float(rate_out)

    def _n_out(self, n_in):
        return resampled_length(int(n_in), self.rate_in, self.rate_out)

    def call(self, waveform):
        return fft_resample(waveform, self._n_out(waveform.shape[-1]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._n_out(input_shape[-1]))

    def get_config(self):
        config = super().get_config()
        config.update(rate_in=self.rate_in, rate_out=self.rate_out)
        return config
