"""Loading natural sounds: formats, rates, channels, length, level, errors."""

import struct
import warnings

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.signal
import tensorflow as tf
import tensorflow_io as tfio

from model_metamers import audio, resources


def _tone(sr, seconds, freq=440.0, amp=0.3):
    t = np.arange(int(sr * seconds)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


@pytest.fixture
def tone_files(tmp_path):
    """The same 440 Hz tone (plus a DC offset) written in several formats and rates."""
    files = {}
    x16 = _tone(16000, 1.5) + 0.05
    stereo = np.stack([x16, x16], axis=1)
    scipy.io.wavfile.write(tmp_path / 'int16_16k_stereo.wav', 16000, (stereo * 32767).astype(np.int16))
    files['int16_16k_stereo.wav'] = 16000
    scipy.io.wavfile.write(tmp_path / 'float32_16k.wav', 16000, x16.astype(np.float32))
    files['float32_16k.wav'] = 16000
    x44 = _tone(44100, 1.5) + 0.05
    scipy.io.wavfile.write(tmp_path / 'float64_44k.wav', 44100, x44)  # tfio cannot read 64-bit
    files['float64_44k.wav'] = 44100
    x20 = _tone(20000, 3.0) + 0.05
    scipy.io.wavfile.write(tmp_path / 'int16_20k_long.wav', 20000, (x20 * 32767).astype(np.int16))
    files['int16_20k_long.wav'] = 20000
    flac = tfio.audio.encode_flac(tf.constant((stereo * 32767).astype(np.int16)), rate=16000)
    tf.io.write_file(str(tmp_path / 'tone.flac'), flac)
    files['tone.flac'] = 16000
    ogg = tfio.audio.encode_vorbis(tf.constant(stereo.astype(np.float32)), rate=16000)
    tf.io.write_file(str(tmp_path / 'tone.ogg'), ogg)
    files['tone.ogg'] = 16000
    return tmp_path, files


def _dominant_freq(x, sr):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * sr / len(x)


def test_every_format_gives_a_normalised_2s_20k_tone(tone_files):
    folder, files = tone_files
    for name in files:
        x = audio.load_audio(str(folder / name))
        assert x.dtype == np.float32 and x.shape == (40000,), name
        assert abs(np.mean(x)) < 1e-6, name
        np.testing.assert_allclose(np.sqrt(np.mean(x.astype(np.float64) ** 2)), 0.1, rtol=1e-5)
        assert abs(_dominant_freq(x, 20000) - 440) < 2, name


def test_padding_and_cutting_positions(tone_files):
    folder, _ = tone_files
    path = str(folder / 'float32_16k.wav')  # 1.5 s -> padded to 2 s
    centre = audio.load_audio(path, rms=None)
    start = audio.load_audio(path, rms=None, position='start')
    assert np.all(centre[:4000] == 0) and np.all(centre[-4000:] == 0) and np.any(centre[5000:6000])
    assert np.all(start[-9000:] == 0) and np.any(start[:1000])
    long_path = str(folder / 'int16_20k_long.wav')  # 3 s -> cut to the middle 2 s
    raw, _ = audio.read_audio(long_path)
    np.testing.assert_allclose(audio.load_audio(long_path, rms=None), raw[10000:50000, 0], atol=1e-7)
    np.testing.assert_allclose(audio.load_audio(long_path, rms=None, position='end'),
                               raw[20000:, 0], atol=1e-7)


def test_stereo_is_mixed_to_mono(tmp_path):
    left = _tone(20000, 2.0, 300)
    right = _tone(20000, 2.0, 700)
    scipy.io.wavfile.write(tmp_path / 's.wav', 20000, np.stack([left, right], 1).astype(np.float32))
    x = audio.load_audio(str(tmp_path / 's.wav'), rms=None)
    np.testing.assert_allclose(x, (left + right) / 2, atol=1e-6)


def test_resampling_preserves_the_tone_and_level(tmp_path):
    x16 = _tone(16000, 2.0, 1000, amp=0.25)
    scipy.io.wavfile.write(tmp_path / 't.wav', 16000, x16.astype(np.float32))
    y = audio.load_audio(str(tmp_path / 't.wav'), rms=None)
    ideal = _tone(20000, 2.0, 1000, amp=0.25)
    middle = slice(2000, 38000)  # the resampler's edges ramp
    # Independent reference: scipy's polyphase resampler.
    ref = scipy.signal.resample_poly(x16, 5, 4)
    assert np.sqrt(np.mean((y[middle] - ref[middle]) ** 2)) < 0.01 * 0.25
    assert abs(np.sqrt(np.mean(y[middle] ** 2)) - np.sqrt(np.mean(ideal[middle] ** 2))) < 0.01


def test_demo_sound_loads_as_the_original_did():
    x = audio.load_audio(resources.DEMO_SOUND)
    rate, raw = scipy.io.wavfile.read(resources.DEMO_SOUND)
    assert rate == 20000 and raw.shape == (40000,)
    expected = (raw - raw.mean()) / np.sqrt(np.mean((raw - raw.mean()) ** 2)) * 0.1
    np.testing.assert_allclose(x, expected.astype(np.float32), rtol=1e-6, atol=1e-8)


def _write_pcm24(path, sr, x):
    """A mono 24-bit integer PCM WAV (scipy writes no 24-bit files)."""
    ints = np.round(x * (2 ** 23 - 1)).astype('<i4')
    payload = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    fmt = struct.pack('<HHIIHH', 1, 1, sr, sr * 3, 3, 24)
    body = b'WAVE' + b'fmt ' + struct.pack('<I', 16) + fmt + b'data' + struct.pack('<I', len(payload)) + payload
    path.write_bytes(b'RIFF' + struct.pack('<I', len(body)) + body)


def test_integer_pcm_widths_read_as_the_same_sound(tmp_path):
    # tensorflow-io returns 32-bit integer PCM as float32 bit patterns; WAV must not go through it.
    x = _tone(20000, 2.0, amp=0.5)
    scipy.io.wavfile.write(tmp_path / 'i16.wav', 20000, np.round(x * 32767).astype(np.int16))
    scipy.io.wavfile.write(tmp_path / 'i32.wav', 20000, np.round(x * (2 ** 31 - 1)).astype(np.int32))
    scipy.io.wavfile.write(tmp_path / 'u8.wav', 20000, np.round(x * 127 + 128).astype(np.uint8))
    _write_pcm24(tmp_path / 'i24.wav', 20000, x)
    expected = audio.load_audio(str(tmp_path / 'i16.wav'))
    for name, atol in (('i32.wav', 1e-4), ('i24.wav', 1e-4), ('u8.wav', 2e-3)):
        raw, sr = audio.read_audio(str(tmp_path / name))
        assert sr == 20000 and raw.shape == (40000, 1), name
        np.testing.assert_allclose(raw[:, 0], x, atol=atol * 5, err_msg=name)
        np.testing.assert_allclose(audio.load_audio(str(tmp_path / name)), expected, atol=atol, err_msg=name)


def test_wav_with_unknown_chunks_reads_without_warnings(tmp_path):
    x = _tone(20000, 2.0)
    path = tmp_path / 'chunks.wav'
    scipy.io.wavfile.write(path, 20000, x.astype(np.float32))
    data = path.read_bytes()
    extra = b'bext' + struct.pack('<I', 8) + b'\0' * 8
    body = data[8:12] + extra + data[12:]
    path.write_bytes(b'RIFF' + struct.pack('<I', len(body)) + body)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        raw, _ = audio.read_audio(str(path))
    np.testing.assert_allclose(raw[:, 0], x, atol=1e-7)


@pytest.mark.parametrize('make,message', [
    (lambda p: None, 'does not exist'),
    (lambda p: p.write_bytes(b'this is not audio at all' * 10), 'cannot read'),
    (lambda p: p.write_bytes(b'RIFF\x10\x00\x00\x00WAVEjunk' * 4), 'cannot read .*scipy: .*tensorflow-io: '),
    (lambda p: scipy.io.wavfile.write(p, 20000, np.zeros(0, np.float32)), 'no samples'),
    (lambda p: scipy.io.wavfile.write(p, 20000, np.zeros(20000, np.int16)), 'silent'),
    (lambda p: scipy.io.wavfile.write(p, 20000, np.full(40000, 0.3, np.float32)), 'silent'),
    (lambda p: scipy.io.wavfile.write(p, 20000, np.array([0.1, np.nan] * 100, np.float32)), 'NaN'),
    (lambda p: scipy.io.wavfile.write(p, 20000, np.array([0.1, np.inf] * 100, np.float32)), 'NaN'),
])
def test_clear_errors(tmp_path, make, message):
    path = tmp_path / 'bad.wav'
    make(path)
    with pytest.raises(audio.AudioLoadError, match=message) as err:
        audio.load_audio(str(path))
    text = str(err.value)
    assert len(text.splitlines()) == 1 and 'function_node' not in text and '[Op:' not in text, text


def test_write_wav_int16_is_peak_safe_and_atomic(tmp_path):
    loud = np.array([0.0, 2.0, -4.0, 1.0])
    gain = audio.write_wav(str(tmp_path / 'loud.wav'), loud, sample_format='int16')
    rate, data = scipy.io.wavfile.read(tmp_path / 'loud.wav')
    assert rate == 20000 and data.dtype == np.int16
    assert gain == pytest.approx(0.99 / 4) and np.max(np.abs(data)) <= 32767
    audio.write_wav(str(tmp_path / 'f.wav'), loud)
    np.testing.assert_array_equal(scipy.io.wavfile.read(tmp_path / 'f.wav')[1], loud.astype(np.float32))
    with pytest.raises(ValueError, match='NaN'):
        audio.write_wav(str(tmp_path / 'nan.wav'), np.array([np.nan]))
    assert not (tmp_path / 'nan.wav').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['f.wav', 'loud.wav']
