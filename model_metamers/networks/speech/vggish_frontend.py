"""VGGish's log-mel front end in TensorFlow, differentiable from the waveform.

The AudioSet release computes its input in numpy (``mel_features.py``,
``vggish_input.py``, parameters in ``vggish_params.py``); this is the same
computation in TF ops so that metamers can be optimised from the waveform:

- 16 kHz mono input; frames of 400 samples (25 ms) every 160 samples (10 ms),
  no padding, incomplete frames at the end dropped;
- periodic Hann window ``0.5 - 0.5 cos(2 pi n / 400)``;
- magnitude of a 512-point rFFT (257 bins);
- 64 triangular mel bands between 125 and 7500 Hz on the HTK mel scale
  ``1127 ln(1 + f / 700)``, triangles linear in mel, DC bin excluded;
- ``log(mel + 0.01)``;
- non-overlapping examples of 96 frames (0.96 s); the frames after the last
  whole example are dropped (``mel_features.frame`` behaviour).

A 2 s clip at 20 kHz (40000 samples) is resampled to 32000 samples at 16 kHz
(:mod:`model_metamers.networks.speech.resample`), giving 198 frames -> 2 examples
(frames 0-95 and 96-191; frames 192-197 are dropped).
"""

import keras
import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.networks.speech import spectral
from model_metamers.networks.speech.resample import fft_resample, resampled_length
from model_metamers.networks.speech.spectral import htk_mel, periodic_hann  # noqa: F401 (public here too)

SAMPLE_RATE = 16000          # Hz
WINDOW_LENGTH = 400          # samples (25 ms at 16 kHz)
HOP_LENGTH = 160             # samples (10 ms)
FFT_LENGTH = 512             # smallest power of two >= WINDOW_LENGTH
NUM_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
NUM_FRAMES = 96              # frames per example (0.96 s)



class VGGishInputError(UserError, ValueError):
    """A waveform VGGish's front end cannot turn into whole examples."""


hertz_to_mel = htk_mel  # the name of VGGish's mel_features


def mel_weight_matrix(num_bands=NUM_BANDS, num_spectrogram_bins=FFT_LENGTH // 2 + 1,
                      sample_rate=SAMPLE_RATE, lower_hz=MEL_MIN_HZ, upper_hz=MEL_MAX_HZ):
    """``[num_spectrogram_bins, num_bands]`` float64 matrix: ``mel = magnitude @ W``.

    Band i has its lower edge, centre and upper edge at points i, i+1, i+2 of
    ``num_bands + 2`` points evenly spaced in mel from ``lower_hz`` to
    ``upper_hz``; spectrogram bins sit at ``linspace(0, sample_rate/2, bins)``.
    Row 0 (DC) is zero, as in HTK.
    """
    if not 0.0 <= lower_hz < upper_hz <= sample_rate / 2.0:
        raise VGGishInputError('mel band edges must satisfy 0 <= lower (%g) < upper (%g) <= '
                               'Nyquist (%g); change lower_hz / upper_hz'
                               % (lower_hz, upper_hz, sample_rate / 2.0))
    bin_mel = hertz_to_mel(np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins))
    edges = np.linspace(hertz_to_mel(lower_hz), hertz_to_mel(upper_hz), num_bands + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def log_mel_spectrogram(waveform):
    """Waveform ``[batch, samples]`` at 16 kHz -> log-mel ``[batch, frames, 64]`` float32.

    ``frames = 1 + (samples - 400) // 160``.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if waveform.shape[-1] is not None and waveform.shape[-1] < WINDOW_LENGTH:
        raise VGGishInputError('VGGish needs at least %d samples at 16 kHz, got %d'
                               % (WINDOW_LENGTH, waveform.shape[-1]))
    frames = tf.signal.frame(waveform, WINDOW_LENGTH, HOP_LENGTH, pad_end=False)
    frames = frames * tf.constant(periodic_hann(WINDOW_LENGTH), tf.float32)
    magnitude = spectral.magnitude(tf.signal.rfft(frames, fft_length=[FFT_LENGTH]))
    mel = tf.tensordot(magnitude, tf.constant(mel_weight_matrix(), tf.float32), axes=1)
    return tf.math.log(mel + LOG_OFFSET)


def num_frames(n_samples_16k):
    """STFT frames for ``n_samples_16k`` samples at 16 kHz."""
    return 1 + (int(n_samples_16k) - WINDOW_LENGTH) // HOP_LENGTH


def num_examples(n_samples_16k):
    """Whole 0.96 s examples in ``n_samples_16k`` samples at 16 kHz."""
    return num_frames(n_samples_16k) // NUM_FRAMES


def log_mel_examples(waveform):
    """Waveform ``[batch, samples]`` at 16 kHz -> ``[batch, n_examples, 96, 64]`` float32.

    Frames after the last whole example are dropped.
    """
    n_examples = num_examples(waveform.shape[-1])
    if n_examples < 1:
        raise VGGishInputError('VGGish needs at least 0.975 s at 16 kHz (%d samples) for one '
                               'example, got %d samples; give a longer sound'
                               % (WINDOW_LENGTH + (NUM_FRAMES - 1) * HOP_LENGTH, waveform.shape[-1]))
    log_mel = log_mel_spectrogram(waveform)[:, :n_examples * NUM_FRAMES]
    return tf.reshape(log_mel, [-1, n_examples, NUM_FRAMES, NUM_BANDS])


class VGGishLogMel(keras.layers.Layer):
    """Waveform ``[batch, T]`` at ``sample_rate`` Hz -> examples ``[batch, n_examples, 96, 64, 1]``.

    Resamples to 16 kHz first (exact FFT resampling) when ``sample_rate`` is
    not 16000. For the project's 2 s / 20 kHz stimuli ``n_examples`` is 2.
    """

    def __init__(self, sample_rate=20000, name='vggish_log_mel', **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.sample_rate = float(sample_rate)

    def _n_16k(self, n_samples):
        return resampled_length(int(n_samples), self.sample_rate, SAMPLE_RATE)

    def call(self, waveform):
        n_16k = self._n_16k(waveform.shape[-1])
        return log_mel_examples(fft_resample(waveform, n_16k))[..., None]

    def compute_output_shape(self, input_shape):
        n_examples = num_examples(self._n_16k(input_shape[-1]))
        return (input_shape[0], n_examples, NUM_FRAMES, NUM_BANDS, 1)

    def get_config(self):
        config = super().get_config()
        config.update(sample_rate=self.sample_rate)
        return config
