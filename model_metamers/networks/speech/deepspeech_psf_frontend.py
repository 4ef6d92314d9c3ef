"""DeepSpeech 0.4.x's MFCC front end (python_speech_features) in TensorFlow, differentiable.

DeepSpeech 0.4.1 computed features in numpy, outside the graph
(``util/audio.py: audiofile_to_input_vector`` at tag v0.4.1)::

    fs, audio = scipy.io.wavfile.read(path)          # 16-bit PCM: int16 sample values
    mfcc(audio, samplerate=fs, numcep=26, winlen=0.032, winstep=0.02, winfunc=np.hamming)

with ``python_speech_features`` (0.6, the PyPI release of the time) defaults
for everything else: 26 filters, 512-point FFT, 0 Hz to ``fs / 2``,
pre-emphasis 0.97, cepstral lifter 22, ``appendEnergy=True``. That call is:

1. pre-emphasis over the whole signal: ``y[0] = x[0]``, ``y[n] = x[n] - 0.97 x[n-1]``;
2. frames of ``round_half_up(0.032 fs)`` = 512 samples every 320 (at 16 kHz);
   ``1 + ceil((n - 512) / 320)`` frames (1 if ``n <= 512``), the signal
   zero-padded at the end to cover the last frame (100 frames for 2 s);
3. a symmetric Hamming window ``0.54 - 0.46 cos(2 pi n / 511)``;
4. power spectrum ``|rfft(frame, 512)|^2 / 512`` (257 bins); frame energy = its sum;
5. 26 triangular filters on FFT-bin edges ``floor(513 * mel2hz(m) / fs)`` at 28
   points ``m`` evenly spaced in mel ``2595 log10(1 + f/700)`` from 0 Hz to
   ``fs / 2`` (:func:`filterbank_matrix`); filter energies = power @ filters;
6. exact zeros (filter energies and frame energy) replaced by float64 eps
   (2.2e-16), then ``log``;
7. orthonormal DCT-II of the 26 log energies, all 26 kept;
8. lifter: coefficient k times ``1 + 11 sin(pi k / 22)``;
9. coefficient 0 replaced by the log frame energy.

The waveform is the project's float waveform (full scale +-1, as 0.5.x's
``decode_wav`` gives); it is multiplied by 32768 first because 0.4.1 fed
``wavfile.read``'s int16 values to ``mfcc`` unscaled. The scale matters: it
shifts coefficient 0 (the log energy) by ``2 ln 32768`` = 20.8.

Everything is differentiable; the only non-smooth step is the eps floor of
step 6, which has zero gradient (it only touches exact zeros: digital silence).
"""

import math

import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.networks.speech.deepspeech_frontend import DeepSpeechMFCC

SAMPLE_RATE = 16000
WINLEN = 0.032           # s (util/audio.py)
WINSTEP = 0.02           # s (util/audio.py)
NUMCEP = 26              # Config.n_input
NFILT = 26               # python_speech_features default
NFFT = 512               # python_speech_features default
LOWFREQ = 0.0            # Hz, python_speech_features default
PREEMPH = 0.97           # python_speech_features default
CEPLIFTER = 22           # python_speech_features default
INT16_SCALE = 32768.0    # float waveform -> the int16 values wavfile.read gave 0.4.1
LOG_FLOOR = float(np.finfo(np.float64).eps)   # replaces exact zeros before the log


class SpeechFeaturesError(UserError, ValueError):
    """Front-end settings or a waveform the python_speech_features front end cannot use."""


def _round_half_up(x):
    return math.floor(float(x) + 0.5)


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def filterbank_matrix(nfilt=NFILT, nfft=NFFT, sample_rate=SAMPLE_RATE, lowfreq=LOWFREQ,
                      highfreq=None):
    """``[nfft // 2 + 1, nfilt]`` float64 triangular mel filters on power-spectrum bins.

    Filter j rises linearly from 0 at edge bin ``e[j]`` to 1 at ``e[j+1]`` and
    falls to 0 at ``e[j+2]`` (that bin excluded), where the ``nfilt + 2`` edges are
    ``floor((nfft + 1) * mel_to_hz(m) / sample_rate)`` for ``m`` evenly spaced
    in mel from ``lowfreq`` to ``highfreq`` (default ``sample_rate / 2``), Hz.
    """
    highfreq = sample_rate / 2.0 if highfreq is None else float(highfreq)
    if nfilt < 1 or nfft < 2 or not 0 <= lowfreq < highfreq <= sample_rate / 2.0:
        raise SpeechFeaturesError('bad filterbank settings: nfilt=%d, nfft=%d, lowfreq=%g Hz, '
                                  'highfreq=%g Hz (need nfilt >= 1, nfft >= 2, 0 <= lowfreq < '
                                  'highfreq <= sample_rate / 2)' % (nfilt, nfft, lowfreq, highfreq))
    mels = np.linspace(hz_to_mel(lowfreq), hz_to_mel(highfreq), nfilt + 2)
    edges = np.floor((nfft + 1) * mel_to_hz(mels) / sample_rate)
    bins = np.arange(nfft // 2 + 1, dtype=np.float64)[:, None]
    lo, mid, hi = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    with np.errstate(divide='ignore', invalid='ignore'):
        rising = np.where((bins >= lo) & (bins < mid), (bins - lo) / (mid - lo), 0.0)
        falling = np.where((bins >= mid) & (bins < hi), (hi - bins) / (hi - mid), 0.0)
    return rising + falling


def dct_matrix(nfilt=NFILT, numcep=NUMCEP):
    """``[nfilt, numcep]`` float64 orthonormal DCT-II (``scipy.fftpack.dct(norm='ortho')``)."""
    if not 1 <= numcep <= nfilt:
        raise SpeechFeaturesError('need 1 <= numcep (%d) <= nfilt (%d)' % (numcep, nfilt))
    j = np.arange(nfilt)[:, None]
    k = np.arange(numcep)[None, :]
    matrix = np.sqrt(2.0 / nfilt) * np.cos(np.pi * k * (2 * j + 1) / (2.0 * nfilt))
    matrix[:, 0] = np.sqrt(1.0 / nfilt)
    return matrix


def lifter_weights(numcep=NUMCEP, ceplifter=CEPLIFTER):
    """``[numcep]`` float64: ``1 + (L / 2) sin(pi k / L)`` (all ones for ``L <= 0``)."""
    k = np.arange(numcep)
    if ceplifter <= 0:
        return np.ones(numcep)
    return 1.0 + (ceplifter / 2.0) * np.sin(np.pi * k / ceplifter)


class SpeechFeaturesConfig:
    """The front-end parameters (defaults: DeepSpeech 0.4.1's call of ``mfcc``)."""

    def __init__(self, sample_rate=SAMPLE_RATE, winlen=WINLEN, winstep=WINSTEP, numcep=NUMCEP,
                 nfilt=NFILT, nfft=NFFT, lowfreq=LOWFREQ, highfreq=None, preemph=PREEMPH,
                 ceplifter=CEPLIFTER, append_energy=True, input_scale=INT16_SCALE):
        self.sample_rate = int(sample_rate)
        self.frame_len = _round_half_up(winlen * self.sample_rate)
        self.frame_step = _round_half_up(winstep * self.sample_rate)
        self.numcep = int(numcep)
        self.n_input = self.numcep  # the name the 0.5.1 front end's layer reads
        self.nfilt = int(nfilt)
        self.nfft = int(nfft)
        self.lowfreq = float(lowfreq)
        self.highfreq = self.sample_rate / 2.0 if highfreq is None else float(highfreq)
        self.preemph = float(preemph)
        self.ceplifter = int(ceplifter)
        self.append_energy = bool(append_energy)
        self.input_scale = float(input_scale)
        if self.frame_len < 1 or self.frame_step < 1:
            raise SpeechFeaturesError('window (%g s) and step (%g s) give %d / %d samples; both '
                                      'must be positive' % (winlen, winstep, self.frame_len,
                                                            self.frame_step))
        if self.nfft < self.frame_len:
            # python_speech_features 0.6 warns and truncates the frame; refuse instead.
            raise SpeechFeaturesError('nfft (%d) is shorter than the frame (%d samples); use '
                                      'nfft >= %d' % (self.nfft, self.frame_len, self.frame_len))
        self.filterbank = filterbank_matrix(self.nfilt, self.nfft, self.sample_rate,
                                            self.lowfreq, self.highfreq)
        self.dct = dct_matrix(self.nfilt, self.numcep)
        self.lifter = lifter_weights(self.numcep, self.ceplifter)
        # np.hamming: the symmetric window.
        self.window = np.hamming(self.frame_len)

    def num_frames(self, n_samples):
        """Frames for ``n_samples`` samples (the last frame zero-padded)."""
        n_samples = int(n_samples)
        if n_samples <= self.frame_len:
            return 1
        return 1 + math.ceil((n_samples - self.frame_len) / self.frame_step)

    def as_dict(self):
        return {'implementation': 'python_speech_features', 'sample_rate': self.sample_rate,
                'frame_len': self.frame_len, 'frame_step': self.frame_step,
                'numcep': self.numcep, 'nfilt': self.nfilt, 'nfft': self.nfft,
                'lowfreq': self.lowfreq, 'highfreq': self.highfreq, 'preemph': self.preemph,
                'ceplifter': self.ceplifter, 'append_energy': self.append_energy,
                'window': 'hamming (symmetric)', 'input_scale': self.input_scale}


def _floor_zeros(x):
    """Exact zeros -> eps (as python_speech_features); the gradient there is zero."""
    return tf.where(tf.equal(x, 0.0), tf.constant(LOG_FLOOR, x.dtype), x)


def mfcc(waveform, config=None):
    """Waveform ``[batch, samples]`` (full scale +-1) -> MFCCs ``[batch, frames, numcep]``."""
    config = config or SpeechFeaturesConfig()
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    n = waveform.shape[-1]
    if n is None or n < 1:
        raise SpeechFeaturesError('the MFCC front end needs a waveform with a known, positive '
                                  'number of samples, got shape %s' % (waveform.shape,))
    x = waveform * config.input_scale
    if config.preemph:
        x = tf.concat([x[:, :1], x[:, 1:] - config.preemph * x[:, :-1]], axis=1)
    frames = config.num_frames(n)
    padded = (frames - 1) * config.frame_step + config.frame_len
    x = tf.pad(x, [[0, 0], [0, padded - n]])
    x = tf.signal.frame(x, config.frame_len, config.frame_step, pad_end=False)
    x = x * tf.constant(config.window, tf.float32)
    spectrum = tf.signal.rfft(x, fft_length=[config.nfft])
    power = (tf.math.square(tf.math.real(spectrum))
             + tf.math.square(tf.math.imag(spectrum))) / float(config.nfft)
    energies = tf.tensordot(power, tf.constant(config.filterbank, tf.float32), axes=1)
    cepstra = tf.tensordot(tf.math.log(_floor_zeros(energies)),
                           tf.constant(config.dct, tf.float32), axes=1)
    cepstra = cepstra * tf.constant(config.lifter, tf.float32)
    if config.append_energy:
        log_energy = tf.math.log(_floor_zeros(tf.reduce_sum(power, axis=-1)))
        cepstra = tf.concat([log_energy[..., None], cepstra[..., 1:]], axis=-1)
    return cepstra


class SpeechFeaturesMFCC(DeepSpeechMFCC):
    """Waveform ``[batch, T]`` at ``sample_rate`` Hz -> MFCCs ``[batch, frames, numcep]``.

    Resamples to ``config.sample_rate`` (16 kHz) first by exact FFT resampling.
    For 2 s at 20 kHz: 32000 samples -> 100 frames.
    """

    features = staticmethod(lambda x, config: mfcc(x, config))
    default_config = SpeechFeaturesConfig

