"""DeepSpeech 0.5.x's MFCC front end in TensorFlow, differentiable from the waveform.

The release computes features with TF's ``AudioSpectrogram`` and ``Mfcc`` ops
(``util/feeding.py: samples_to_mfccs``), which have no gradient. This module
computes the same numbers with differentiable ops:

``AudioSpectrogram(window_size=512, stride=320, magnitude_squared=True)`` at 16 kHz:
  frames of 512 samples (32 ms) every 320 samples (20 ms), no padding
  (``1 + (n - 512) // 320`` frames), periodic Hann window
  ``0.5 - 0.5 cos(2 pi n / 512)``, FFT of the next power of two (512),
  ``|X|^2`` of bins 0..256.
``Mfcc(sample_rate=16000, dct_coefficient_count=26)`` with the op's defaults
  (40 filterbank channels, 20 Hz to 4000 Hz):
  the filterbank takes ``sqrt`` of the power (the magnitude) and sums it under
  triangles whose centres are 41 points evenly spaced in HTK mel
  ``1127 ln(1 + f/700)`` strictly above mel(20 Hz), up to mel(4000 Hz); bins
  ``int(1.5 + 20/hz_per_bin)`` .. ``int(4000/hz_per_bin)`` only (DC excluded),
  ``hz_per_bin = 8000 / 256``; each bin adds ``w`` to the channel whose
  falling slope it is on and ``1 - w`` to the next channel.
  Then ``log(max(mel, 1e-12))`` and a DCT-II with every row scaled by
  ``sqrt(2 / 40)`` (no special scaling of coefficient 0):
  ``c_k = sqrt(2/40) sum_j log_mel_j cos(pi/40 (j + 0.5) k)``, k = 0..25.

Context windows (``DeepSpeech.py: create_overlapping_windows``): each frame
gets the 9 frames before and after it (zeros beyond the ends), flattened
frame-major: feature ``t * 26 + c`` is coefficient c of frame offset t - 9.
"""

import keras
import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.networks.speech import spectral
from model_metamers.networks.speech.resample import fft_resample, resampled_length
from model_metamers.networks.speech.spectral import htk_mel, periodic_hann  # noqa: F401 (public here too)

SAMPLE_RATE = 16000
WINDOW_MS = 32.0
STEP_MS = 20.0
N_INPUT = 26                 # MFCC coefficients
N_CONTEXT = 9                # frames of context on each side
FILTERBANK_CHANNELS = 40     # Mfcc op default
LOWER_FREQUENCY_LIMIT = 20.0     # Hz, Mfcc op default
UPPER_FREQUENCY_LIMIT = 4000.0   # Hz, Mfcc op default
FILTERBANK_FLOOR = 1e-12     # Mfcc op: values below are set to this before the log


class DeepSpeechInputError(UserError, ValueError):
    """Front-end settings or a waveform the MFCC front end cannot use."""


def _next_power_of_two(n):
    return 1 << (int(n) - 1).bit_length()


def mfcc_filterbank_matrix(num_bins, sample_rate=SAMPLE_RATE, channels=FILTERBANK_CHANNELS,
                           lower_hz=LOWER_FREQUENCY_LIMIT, upper_hz=UPPER_FREQUENCY_LIMIT):
    """``[num_bins, channels]`` float64 matrix of TF's ``Mfcc`` mel filterbank (on magnitudes).

    ``num_bins`` is the spectrogram's bin count (``fft_length // 2 + 1``).
    """
    if channels < 1 or num_bins < 2 or not 0 <= lower_hz < upper_hz:
        raise DeepSpeechInputError('bad MFCC filterbank settings: channels=%d, bins=%d, '
                                   'lower=%g Hz, upper=%g Hz (need channels >= 1, bins >= 2, '
                                   '0 <= lower < upper)' % (channels, num_bins, lower_hz, upper_hz))
    mel_low = htk_mel(lower_hz)
    spacing = (htk_mel(upper_hz) - mel_low) / (channels + 1)
    # channels + 1 centres: the last one is the upper edge of the top triangle.
    centres = mel_low + spacing * np.arange(1, channels + 2)
    hz_per_bin = 0.5 * sample_rate / (num_bins - 1)
    start = int(1.5 + lower_hz / hz_per_bin)
    end = int(upper_hz / hz_per_bin)
    matrix = np.zeros((num_bins, channels))
    for i in range(start, min(end, num_bins - 1) + 1):
        mel = htk_mel(i * hz_per_bin)
        # The channel whose falling slope bin i is on: one below the first of
        # the first ``channels`` centres that is >= mel (-1 below the first
        # centre, channels - 1 above the last one), as the op's band mapper.
        channel = int(np.searchsorted(centres[:channels], mel, side='left')) - 1
        if channel >= 0:
            weight = (centres[channel + 1] - mel) / (centres[channel + 1] - centres[channel])
            matrix[i, channel] += weight
        else:
            weight = (centres[0] - mel) / (centres[0] - mel_low)
        if channel + 1 < channels:
            matrix[i, channel + 1] += 1.0 - weight
    return matrix


def mfcc_dct_matrix(channels=FILTERBANK_CHANNELS, coefficients=N_INPUT):
    """``[channels, coefficients]`` float64: ``sqrt(2/N) cos(pi/N (j + 0.5) k)`` (TF's ``MfccDct``)."""
    if not 1 <= coefficients <= channels:
        raise DeepSpeechInputError('need 1 <= dct coefficients (%d) <= filterbank channels (%d)'
                                   % (coefficients, channels))
    j = np.arange(channels)[:, None]
    k = np.arange(coefficients)[None, :]
    return np.sqrt(2.0 / channels) * np.cos(np.pi / channels * (j + 0.5) * k)


class MFCCConfig:
    """The front-end parameters (defaults: DeepSpeech 0.5.1 with the ops' defaults)."""

    def __init__(self, sample_rate=SAMPLE_RATE, window_ms=WINDOW_MS, step_ms=STEP_MS,
                 n_input=N_INPUT, filterbank_channels=FILTERBANK_CHANNELS,
                 lower_frequency_limit=LOWER_FREQUENCY_LIMIT,
                 upper_frequency_limit=UPPER_FREQUENCY_LIMIT):
        self.sample_rate = int(sample_rate)
        # As the release: int(rate * ms / 1000) samples.
        self.window_samples = int(self.sample_rate * (window_ms / 1000.0))
        self.step_samples = int(self.sample_rate * (step_ms / 1000.0))
        self.fft_length = _next_power_of_two(self.window_samples)
        self.n_input = int(n_input)
        self.filterbank_channels = int(filterbank_channels)
        self.lower_frequency_limit = float(lower_frequency_limit)
        self.upper_frequency_limit = float(upper_frequency_limit)
        if self.window_samples < 2 or self.step_samples < 1:
            raise DeepSpeechInputError('window (%g ms) and step (%g ms) give %d / %d samples; '
                                       'both must be positive' % (window_ms, step_ms,
                                                                  self.window_samples,
                                                                  self.step_samples))
        self.filterbank = mfcc_filterbank_matrix(
            self.fft_length // 2 + 1, self.sample_rate, self.filterbank_channels,
            self.lower_frequency_limit, self.upper_frequency_limit)
        self.dct = mfcc_dct_matrix(self.filterbank_channels, self.n_input)

    def num_frames(self, n_samples):
        """Spectrogram frames for ``n_samples`` samples at ``sample_rate``."""
        if n_samples < self.window_samples:
            return 0
        return 1 + (int(n_samples) - self.window_samples) // self.step_samples

    def as_dict(self):
        return {'sample_rate': self.sample_rate, 'window_samples': self.window_samples,
                'step_samples': self.step_samples, 'fft_length': self.fft_length,
                'n_input': self.n_input, 'filterbank_channels': self.filterbank_channels,
                'lower_frequency_limit': self.lower_frequency_limit,
                'upper_frequency_limit': self.upper_frequency_limit}


def mfcc(waveform, config=None):
    """Waveform ``[batch, samples]`` at ``config.sample_rate`` -> MFCCs ``[batch, frames, n_input]``."""
    config = config or MFCCConfig()
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if config.num_frames(waveform.shape[-1]) < 1:
        raise DeepSpeechInputError('the MFCC front end needs at least %d samples, got %d'
                                   % (config.window_samples, waveform.shape[-1]))
    frames = tf.signal.frame(waveform, config.window_samples, config.step_samples, pad_end=False)
    frames = frames * tf.constant(periodic_hann(config.window_samples), tf.float32)
    magnitude = spectral.magnitude(tf.signal.rfft(frames, fft_length=[config.fft_length]))
    mel = tf.tensordot(magnitude, tf.constant(config.filterbank, tf.float32), axes=1)
    log_mel = tf.math.log(tf.maximum(mel, FILTERBANK_FLOOR))
    return tf.tensordot(log_mel, tf.constant(config.dct, tf.float32), axes=1)


def overlapping_windows(features, n_context=N_CONTEXT):
    """``[batch, frames, n]`` -> ``[batch, frames, (2*n_context + 1) * n]``, zero-padded context.

    Output feature ``t * n + c`` of frame f is input feature c of frame
    ``f + t - n_context`` (0 outside the sequence), as the release's
    identity-filter ``conv1d`` with SAME padding.
    """
    width = 2 * n_context + 1
    n = features.shape[-1]
    padded = tf.pad(features, [[0, 0], [n_context, n_context], [0, 0]])
    windows = tf.signal.frame(padded, width, 1, axis=1)  # [batch, frames, width, n]
    return tf.reshape(windows, [-1, windows.shape[1], width * n])


class DeepSpeechMFCC(keras.layers.Layer):
    """Waveform ``[batch, T]`` at ``sample_rate`` Hz -> MFCCs ``[batch, frames, n_input]``.

    Resamples to ``config.sample_rate`` (16 kHz) first by exact FFT
    resampling. For 2 s at 20 kHz: 32000 samples -> 99 frames.
    """

    # The release's features of the resampled waveform; DeepSpeech 0.4.1's front end swaps these two.
    features = staticmethod(lambda x, config: mfcc(x, config))
    default_config = None  # MFCCConfig, set below (defined later in this module's reading order)

    def __init__(self, sample_rate=20000, config=None, name='mfcc', **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.sample_rate = float(sample_rate)
        self.config = config or self.default_config()

    def _n_model(self, n_samples):
        return resampled_length(int(n_samples), self.sample_rate, self.config.sample_rate)

    def call(self, waveform):
        return self.features(fft_resample(waveform, self._n_model(waveform.shape[-1])), self.config)

    def compute_output_shape(self, input_shape):
        frames = self.config.num_frames(self._n_model(input_shape[-1]))
        return (input_shape[0], frames, self.config.n_input)


DeepSpeechMFCC.default_config = MFCCConfig


class OverlappingWindows(keras.layers.Layer):
    """Keras wrapper of :func:`overlapping_windows`."""

    def __init__(self, n_context=N_CONTEXT, name='mfcc_windows', **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.n_context = int(n_context)

    def call(self, features):
        return overlapping_windows(features, self.n_context)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], (2 * self.n_context + 1) * input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(n_context=self.n_context)
        return config
