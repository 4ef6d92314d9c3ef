"""The paper's training augmentation: speech shifted in time and mixed with a background clip.

Feather et al. 2019 trained the word and AudioSet networks on speech "randomly
shifted in time and mixed with a background clip at an SNR uniform in [-10, 10] dB",
for training and validation clips alike. Here, per clip:

1. the speech waveform is shifted by a whole number of samples drawn uniformly
   from ``[-max_shift, max_shift]`` (zeros fill the gap; what leaves the clip is lost);
2. a background clip is drawn from the background set and a window of the clip's
   length is taken at a random offset (backgrounds shorter than the clip are
   zero-padded when loaded);
3. the background is scaled so that ``20 log10(rms(speech) / rms(background))``
   equals an SNR drawn uniformly from ``[snr_low, snr_high]`` dB, added, and the
   mixture is brought back to mean 0, RMS 0.1.

Randomness is stateless, a function of ``(seed, epoch, clip index)``, so a run
is reproducible and resumes identically; validation clips use epoch 0 on every
epoch, so the validation set is the same noisy set throughout.
"""

import glob
import os

import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.training import data


class AugmentError(UserError, ValueError):
    """Bad augmentation settings (no background clips, an empty SNR range)."""


def load_backgrounds(background_dir, sr, n_samples, max_clips=2000):
    """Background clips of a folder (``*.wav``, recursive) as float32 ``[n_clips, max(len)]``.

    Each clip is resampled to ``sr`` Hz, kept whole if longer than ``n_samples``
    (a random window is taken per use) up to 10 x ``n_samples``, else zero-padded
    to ``n_samples``; RMS-normalised to 0.1.
    """
    files = sorted(glob.glob(os.path.join(background_dir, '**', '*.wav'), recursive=True))
    if not files:
        raise AugmentError('no background clips (*.wav) in %s; give --background_dir a folder of '
                           'WAV files, or turn augmentation off with --augment=off' % background_dir)
    clips = []
    for path in files[:max_clips]:
        import scipy.io.wavfile
        file_sr, raw = scipy.io.wavfile.read(path)
        length = int(round(raw.shape[0] * sr / float(file_sr)))
        length = min(max(length, n_samples), 10 * n_samples)
        clips.append(data.load_clip(path, sr, length))
    width = max(c.size for c in clips)
    out = np.zeros((len(clips), width), np.float32)
    lengths = np.array([c.size for c in clips], np.int32)
    for i, c in enumerate(clips):
        out[i, :c.size] = c
    return out, lengths


def _rms(x):
    return tf.sqrt(tf.reduce_mean(tf.square(x)) + 1e-12)


def make_mixer(backgrounds, lengths, n_samples, max_shift, snr_low=-10.0, snr_high=10.0, seed=0):
    """A function ``mix(waveform [T], epoch, index) -> waveform [T]`` (TF ops, graph-safe)."""
    if snr_high < snr_low:
        raise AugmentError('the SNR range is empty: snr_low %g > snr_high %g' % (snr_low, snr_high))
    backgrounds = tf.constant(backgrounds)
    lengths = tf.constant(lengths)
    n_bg = int(lengths.shape[0])
    max_shift = int(max_shift)

    def mix(wave, epoch, index):
        key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64) * 1000003
                        + tf.cast(index, tf.int64)])
        keys = tf.random.experimental.stateless_split(tf.cast(key, tf.int64), 4)
        shift = tf.random.stateless_uniform([], keys[0], -max_shift, max_shift + 1, tf.int32)
        padded = tf.pad(wave, [[max_shift, max_shift]])
        speech = padded[max_shift - shift:max_shift - shift + n_samples]
        k = tf.random.stateless_uniform([], keys[1], 0, n_bg, tf.int32)
        room = lengths[k] - n_samples + 1
        offset = tf.random.stateless_uniform([], keys[2], 0, tf.int32.max, tf.int32) % room
        bg = backgrounds[k, offset:offset + n_samples]
        snr = tf.random.stateless_uniform([], keys[3], snr_low, snr_high)
        mixed = speech + bg * (_rms(speech) / _rms(bg)) * tf.pow(10.0, -snr / 20.0)
        mixed = mixed - tf.reduce_mean(mixed)
        return tf.ensure_shape(mixed * (data.RMS / _rms(mixed)), [n_samples])

    return mix
