"""Loading natural sounds for the audio networks, and writing sounds to WAV.

A natural sound becomes a network input by (SPEC §4): read (WAV through scipy;
FLAC, OGG and WAV that scipy cannot read through tensorflow-io) -> mix to mono
-> resample to 20 kHz (tensorflow-io) -> cut or zero-pad to 2 s -> remove the
mean -> scale to RMS 0.1.
"""

import os

import numpy as np

from model_metamers.errors import UserError
from model_metamers.fileio import atomic_path
from model_metamers.op_errors import op_error_text

NETWORK_SR = 20000
NETWORK_DURATION_S = 2.0
NETWORK_RMS = 0.1
POSITIONS = ('center', 'start', 'end')
# What a folder of sounds is scanned for (lower-case suffixes).
FILE_EXTENSIONS = ('.wav', '.flac', '.ogg')


class AudioLoadError(UserError, ValueError):
    """A sound file that cannot be used as a stimulus."""


def _read_tfio(path):
    import tensorflow as tf
    import tensorflow_io as tfio

    audio = tfio.audio.AudioIOTensor(path)
    data = audio.to_tensor()
    rate = int(audio.rate.numpy())
    if data.dtype == tf.int16:
        samples = data.numpy().astype(np.float64) / 32768.0
    elif data.dtype == tf.int32:
        samples = data.numpy().astype(np.float64) / 2147483648.0
    elif data.dtype == tf.uint8:
        samples = (data.numpy().astype(np.float64) - 128.0) / 128.0
    else:
        samples = data.numpy().astype(np.float64)
    return samples, rate


def read_wav(path):
    """Samples and rate of a WAV file through scipy (thread-safe, unlike tensorflow-io's reader).

    Returns ``(samples, sr)``: float64 ``[n_samples]`` or ``[n_samples, n_channels]``,
    integer formats (8, 16, 24, 32, 64-bit) scaled to [-1, 1), and the rate in Hz.
    Raises scipy's ``ValueError`` or an ``OSError`` for what it cannot read.
    """
    import warnings

    import scipy.io.wavfile

    with warnings.catch_warnings():
        # Extra chunks (LIST, bext, ...) are skipped with a warning that says nothing useful here.
        warnings.simplefilter('ignore', scipy.io.wavfile.WavFileWarning)
        rate, data = scipy.io.wavfile.read(path)
    if data.dtype == np.uint8:
        samples = (data.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        samples = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    else:
        samples = data.astype(np.float64)
    return samples, int(rate)


def _is_wav(path):
    try:
        with open(path, 'rb') as f:
            head = f.read(12)
    except OSError:  # unreadable: the readers say why
        return False
    return head[:4] in (b'RIFF', b'RIFX', b'RF64') and head[8:12] == b'WAVE'


def read_audio(path):
    """Raw samples and rate of a sound file.

    Returns ``(samples, sr)``: float64 ``[n_samples, n_channels]`` with integer
    formats scaled to [-1, 1), and the sampling rate in Hz.
    """
    if not os.path.exists(path):
        raise AudioLoadError('audio file %s does not exist; check the path' % path)
    if os.path.isdir(path):
        raise AudioLoadError('%s is a folder, not an audio file' % path)
    # WAV goes to scipy first: tensorflow-io reads 32-bit integer PCM as float32 bit patterns
    # (garbage, or NaN) and cannot read 64-bit WAV at all. Everything else is tensorflow-io's.
    readers = [('tensorflow-io', _read_tfio), ('scipy', read_wav)]
    if _is_wav(path):
        readers.reverse()
    errors = []
    for name, reader in readers:
        try:
            samples, sr = reader(path)
            break
        except Exception as exc:  # tfio raises many op-level error types
            errors.append('%s: %s' % (name, op_error_text(exc)))
    else:
        raise AudioLoadError('cannot read %s as WAV, FLAC or OGG audio (%s); convert it to '
                             'WAV' % (path, '; '.join(errors)))
    if samples.ndim == 1:
        samples = samples[:, None]
    return samples, sr


def resample(samples, sr_in, sr_out):
    """Resample ``[n, channels]`` float audio from ``sr_in`` to ``sr_out`` Hz (tensorflow-io)."""
    if sr_in == sr_out:
        return samples
    import tensorflow as tf
    import tensorflow_io as tfio

    out = tfio.audio.resample(tf.constant(samples, tf.float32), int(sr_in), int(sr_out))
    return out.numpy().astype(np.float64)


def fit_length(signal, n_samples, position='center'):
    """Cut or zero-pad a 1-D signal to ``n_samples``.

    ``position``: which part to keep when cutting and where the sound sits when
    padding: ``'center'`` (default), ``'start'`` or ``'end'``.
    """
    if position not in POSITIONS:
        raise AudioLoadError('position must be one of %s, got %r' % (', '.join(POSITIONS), position))
    n = signal.shape[0]
    if n == n_samples:
        return signal
    if n > n_samples:
        offset = {'center': (n - n_samples) // 2, 'start': 0, 'end': n - n_samples}[position]
        return signal[offset:offset + n_samples]
    before = {'center': (n_samples - n) // 2, 'start': 0, 'end': n_samples - n}[position]
    return np.pad(signal, (before, n_samples - n - before))


def normalize_rms(signal, rms=NETWORK_RMS, path='<array>'):
    """Remove the mean and scale to the given RMS (float64 in, float64 out)."""
    if not np.all(np.isfinite(signal)):
        raise AudioLoadError('%s contains NaN or infinite samples; fix or re-export the file' % path)
    centred = signal - np.mean(signal)
    current = np.sqrt(np.mean(centred ** 2))
    peak = np.max(np.abs(signal)) if signal.size else 0.0
    # A constant (DC-only) signal leaves only round-off after mean removal.
    if current == 0 or current <= 1e-7 * peak:
        raise AudioLoadError('%s is silent (RMS 0 after removing the mean); choose a sound with '
                             'content' % path)
    return centred / current * rms


def load_audio(path, sr=NETWORK_SR, duration_s=NETWORK_DURATION_S, rms=NETWORK_RMS,
               position='center'):
    """A sound file as a network input.

    Args:
      path: WAV, FLAC or OGG file (any rate, mono or multi-channel, integer or float).
      sr: target rate in Hz (20000 for every word/AudioSet network).
      duration_s: length in seconds; the sound is cut or zero-padded (see
        :func:`fit_length` for ``position``). ``None`` keeps the whole sound.
      rms: RMS after removing the mean (0.1, as the networks were trained);
        ``None`` leaves the level alone.

    Returns:
      float32 ``[round(duration_s * sr)]`` waveform.

    Raises:
      AudioLoadError: missing, unreadable, empty, silent or non-finite audio.
    """
    samples, file_sr = read_audio(path)
    if samples.shape[0] == 0:
        raise AudioLoadError('%s holds no samples; choose a non-empty sound' % path)
    if not np.all(np.isfinite(samples)):
        raise AudioLoadError('%s contains NaN or infinite samples; fix or re-export the file' % path)
    mono = np.mean(samples, axis=1)
    mono = resample(mono[:, None], file_sr, sr)[:, 0]
    if duration_s is not None:
        mono = fit_length(mono, int(round(duration_s * sr)), position)
    if rms is not None:
        mono = normalize_rms(mono, rms, path)
    return mono.astype(np.float32)


def write_wav(path, waveform, sr=NETWORK_SR, sample_format='float32', peak=0.99):
    """Write a mono waveform to WAV atomically.

    Args:
      waveform: 1-D float array.
      sample_format: ``'float32'`` (values kept as they are) or ``'int16'``. For
        ``'int16'`` a sound whose peak exceeds ``peak`` is scaled down to it so
        it cannot clip; the returned gain says by how much (1.0 when untouched).

    Returns:
      The gain applied.
    """
    import scipy.io.wavfile

    x = np.asarray(waveform, np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError('cannot write %s: the waveform has NaN or infinite samples' % path)
    gain = 1.0
    if sample_format == 'int16':
        top = np.max(np.abs(x)) if x.size else 0.0
        if top > peak:
            gain = peak / top
        data = np.round(x * gain * 32767).astype(np.int16)
    elif sample_format == 'float32':
        data = x.astype(np.float32)
    else:
        raise ValueError("sample_format must be 'float32' or 'int16', got %r" % (sample_format,))
    with atomic_path(path, '.wav') as tmp:
        scipy.io.wavfile.write(tmp, int(sr), data)
    return gain
