"""An offline spoken-word data set for the keyword-spotting networks, spoken by espeak-ng.

``python -m model_metamers.spoken_words --out=DIR [--clips=8000 --seed=0 --jobs=N]``

Each clip is one of the 8 keywords (:data:`WORDS`) spoken by espeak-ng with a
"speaker" (a base voice and a voice variant), a speaking rate, a pitch and a
pitch range drawn at random, shifted to a random place inside a 1 s clip at
16 kHz and mixed with a background at a random SNR. Backgrounds are
synthesised: white, pink or brown noise, mains hum with harmonics, or babble
(other espeak words, not keywords, by other voices, overlapping).

Splits are by speaker: every speaker belongs to exactly one of train / val /
test, so test voices are never heard in training. Within a split the words are
balanced (clip ``i`` of a split says word ``i % 8``). 8000 clips give
6400 / 800 / 800.

Output (also the generic "folder + CSV" input of ``python -m model_metamers.train``)::

    DIR/wavs/00000_yes.wav ...   16-bit PCM mono WAV, 16 kHz, 16000 samples
    DIR/labels.csv               header ``path,label,split``; path relative to DIR
    DIR/clips.csv                every clip's synthesis settings (speaker, rate, SNR, ...)

The clip plan is a pure function of ``(clips, seed)`` and the installed
espeak-ng voices, so a run that is interrupted resumes by skipping the WAVs
already written (each is written atomically). The CSV files are written last.
"""

import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from model_metamers.errors import UserError
from model_metamers import fileio

WORDS = ('down', 'go', 'left', 'no', 'right', 'stop', 'up', 'yes')
SAMPLE_RATE = 16000  # Hz, the keyword-spotting networks' rate
CLIP_SAMPLES = 16000  # 1 s
SPLIT_FRACTIONS = (('train', 0.8), ('val', 0.1), ('test', 0.1))

# Base voices (espeak-ng's own "gmw" voices; no mbrola needed): English accents plus two
# non-English voices reading the English words, for accented speech.
BASE_VOICES = ('en', 'en-us', 'en-gb-scotland', 'en-gb-x-rp', 'en-gb-x-gbclan',
               'en-gb-x-gbcwmd', 'en-029', 'en-us-nyc', 'de', 'nl')
# Voice variants (``voice+variant``); the plain voice is variant ''. Only those installed are used.
VARIANTS = ('', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'f1', 'f2', 'f3', 'f4', 'f5',
            'klatt', 'klatt2', 'klatt3', 'croak', 'whisper')
# Words for babble backgrounds: common English words, none of them a keyword.
BABBLE_WORDS = ('house', 'water', 'seven', 'table', 'yellow', 'morning', 'people', 'little',
                'window', 'number', 'paper', 'garden', 'music', 'later', 'family', 'answer',
                'river', 'dinner', 'city', 'over', 'because', 'thirty', 'animal', 'open')
BACKGROUNDS = ('white', 'pink', 'brown', 'babble', 'hum')

RATE_WPM = (110, 230)        # espeak -s, words per minute
PITCH = (15, 85)             # espeak -p, 0-99
SNR_DB = (0.0, 25.0)         # speech-to-background ratio, uniform
LEVEL_DB = (-30.0, -12.0)    # final RMS of the clip in dB re full scale, uniform


class SpokenWordsError(UserError, RuntimeError):
    """espeak-ng missing or failing, or bad arguments."""


def espeak_binary():
    """Path of espeak-ng; one-line error with the fix when it is missing."""
    path = shutil.which('espeak-ng')
    if path is None:
        raise SpokenWordsError('espeak-ng is not installed; install it with apt-get install espeak-ng '
                               '(or run make spoken-words, which installs it and makes the data set)')
    return path


def installed_variants():
    """The voice variants (``+name``) this espeak-ng has, lower-case file names."""
    out = subprocess.run([espeak_binary(), '--voices=variant'], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        parts = line.split()
        if parts and parts[-1].startswith('!v/'):
            names.add(parts[-1][3:].lower())
    return names


def installed_languages():
    """Language codes of espeak-ng's voices (first column after the priority)."""
    out = subprocess.run([espeak_binary(), '--voices'], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1}


def speakers():
    """Sorted ``voice[+variant]`` names usable with this espeak-ng (the split unit)."""
    languages = installed_languages()
    variants = installed_variants()
    voices = [v for v in BASE_VOICES if v in languages]
    if not voices:
        raise SpokenWordsError('espeak-ng has none of the voices %s; reinstall espeak-ng '
                               '(apt-get install --reinstall espeak-ng espeak-ng-data)'
                               % ', '.join(BASE_VOICES))
    out = []
    for voice in voices:
        for variant in VARIANTS:
            if variant == '' or variant in variants:
                out.append(voice + ('+' + variant if variant else ''))
    return sorted(out)


def split_sizes(n_clips):
    """``{'train': n, 'val': n, 'test': n}``: 10 % each for val and test, the rest train."""
    n_val = int(round(n_clips * 0.1))
    n_test = int(round(n_clips * 0.1))
    return {'train': n_clips - n_val - n_test, 'val': n_val, 'test': n_test}


def split_speakers(all_speakers, seed):
    """Speakers per split (80 / 10 / 10 %, at least one each), a seeded permutation."""
    if len(all_speakers) < 3:
        raise SpokenWordsError('need at least 3 espeak-ng speakers to split by speaker, found %d'
                               % len(all_speakers))
    order = np.random.default_rng([seed, 1]).permutation(len(all_speakers))
    n_val = max(1, int(round(0.1 * len(order))))
    n_test = max(1, int(round(0.1 * len(order))))
    n_train = len(order) - n_val - n_test
    picked = [all_speakers[i] for i in order]
    return {'train': picked[:n_train], 'val': picked[n_train:n_train + n_val],
            'test': picked[n_train + n_val:]}


def plan(n_clips, seed, all_speakers=None):
    """Every clip's settings: a list of dicts (index, path, word, split, speaker, rate, ...).

    Deterministic in ``(n_clips, seed, speakers)``. Words are balanced within
    each split; clips are numbered in a seeded shuffled order so any prefix of
    the WAV files mixes words and splits.
    """
    if n_clips < 1:
        raise SpokenWordsError('--clips must be at least 1, got %d' % n_clips)
    all_speakers = speakers() if all_speakers is None else list(all_speakers)
    by_split = split_speakers(all_speakers, seed)
    rng = np.random.default_rng([seed, 2])
    clips = []
    for split, n in split_sizes(n_clips).items():
        for i in range(n):
            clips.append({'word': WORDS[i % len(WORDS)], 'split': split,
                          'speaker': by_split[split][rng.integers(len(by_split[split]))]})
    order = rng.permutation(len(clips))
    out = []
    for index, k in enumerate(order):
        c = dict(clips[k])
        r = np.random.default_rng([seed, 3, index])
        c.update(index=index, path='wavs/%05d_%s.wav' % (index, c['word']),
                 rate=int(r.integers(*RATE_WPM)), pitch=int(r.integers(*PITCH)),
                 amplitude=int(r.integers(60, 180)), background=BACKGROUNDS[r.integers(len(BACKGROUNDS))],
                 snr_db=float(np.round(r.uniform(*SNR_DB), 2)),
                 level_db=float(np.round(r.uniform(*LEVEL_DB), 2)), seed=int(r.integers(2 ** 31)))
        out.append(c)
    return out


# ------------------------------------------------------------------ synthesis
def speak(text, voice, rate=160, pitch=50, amplitude=100, sr=SAMPLE_RATE):
    """espeak-ng speaking ``text``: float64 waveform at ``sr`` Hz, leading/trailing silence cut."""
    import scipy.io.wavfile
    import scipy.signal

    fd, tmp = tempfile.mkstemp(suffix='.wav')
    os.close(fd)
    try:
        cmd = [espeak_binary(), '-v', voice, '-s', str(rate), '-p', str(pitch), '-a', str(amplitude),
               '-w', tmp, text]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SpokenWordsError('espeak-ng failed (%s): %s' % (' '.join(cmd), done.stderr.strip()))
        file_sr, data = scipy.io.wavfile.read(tmp)
    finally:
        os.remove(tmp)
    x = data.astype(np.float64) / 32768.0
    if x.ndim > 1:
        x = x.mean(axis=1)
    if file_sr != sr:
        g = np.gcd(int(file_sr), int(sr))
        x = scipy.signal.resample_poly(x, sr // g, file_sr // g)
    return trim_silence(x)


def trim_silence(x, threshold=0.02):
    """Cut samples before the first / after the last above ``threshold`` x peak."""
    if x.size == 0 or np.max(np.abs(x)) == 0:
        return x
    loud = np.flatnonzero(np.abs(x) > threshold * np.max(np.abs(x)))
    return x[loud[0]:loud[-1] + 1]


def colored_noise(n, exponent, rng):
    """Noise with power ∝ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS, ``[n]``."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.arange(n // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / f ** (exponent / 2.0), n)
    x -= x.mean()
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def hum(n, rng, sr=SAMPLE_RATE):
    """Mains hum: 50 or 60 Hz and a few harmonics with random phases, unit RMS."""
    t = np.arange(n) / sr
    base = 50.0 if rng.random() < 0.5 else 60.0
    x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
            for k in range(1, 8))
    x = x + 0.05 * colored_noise(n, 1.0, rng)
    return x / np.sqrt(np.mean(x ** 2))


def babble(n, rng, all_speakers, sr=SAMPLE_RATE):
    """3-6 non-keyword words by random speakers at random places, unit RMS."""
    x = np.zeros(n)
    for _ in range(int(rng.integers(3, 7))):
        word = BABBLE_WORDS[rng.integers(len(BABBLE_WORDS))]
        w = speak(word, all_speakers[rng.integers(len(all_speakers))],
                  rate=int(rng.integers(*RATE_WPM)), pitch=int(rng.integers(*PITCH)), sr=sr)[:n]
        if w.size == 0:
            continue
        start = int(rng.integers(-w.size // 2, n - w.size // 2))
        lo, hi = max(start, 0), min(start + w.size, n)
        x[lo:hi] += w[lo - start:hi - start] / (np.sqrt(np.mean(w ** 2)) + 1e-12)
    rms = np.sqrt(np.mean(x ** 2))
    return x / rms if rms > 0 else colored_noise(n, 1.0, rng)


def background(kind, n, rng, all_speakers):
    """A unit-RMS background of ``kind`` (one of :data:`BACKGROUNDS`), ``[n]`` float64."""
    if kind in ('white', 'pink', 'brown'):
        return colored_noise(n, {'white': 0.0, 'pink': 1.0, 'brown': 2.0}[kind], rng)
    if kind == 'hum':
        return hum(n, rng)
    return babble(n, rng, all_speakers)


def make_clip(clip, all_speakers, sr=SAMPLE_RATE, n=CLIP_SAMPLES):
    """The waveform of one planned clip, float64 ``[n]``, peak below 1."""
    rng = np.random.default_rng(clip['seed'])
    speech = speak(clip['word'], clip['speaker'], clip['rate'], clip['pitch'], clip['amplitude'], sr)
    if speech.size == 0:
        raise SpokenWordsError('espeak-ng produced silence for %r with voice %s'
                               % (clip['word'], clip['speaker']))
    if speech.size > n:  # rare: a slow voice; keep the middle second
        cut = (speech.size - n) // 2
        speech = speech[cut:cut + n]
    start = int(rng.integers(0, n - speech.size + 1))  # random time shift inside the clip
    speech_rms = np.sqrt(np.mean(speech ** 2))
    x = np.zeros(n)
    x[start:start + speech.size] = speech / speech_rms
    # SNR relative to the speech's own RMS (over the word, not the whole clip).
    x += background(clip['background'], n, rng, all_speakers) * 10 ** (-clip['snr_db'] / 20)
    x *= 10 ** (clip['level_db'] / 20) / np.sqrt(np.mean(x ** 2))
    peak = np.max(np.abs(x))
    return x * (0.99 / peak) if peak > 0.99 else x


def _write_clip(args):
    clip, out_dir, all_speakers = args
    path = os.path.join(out_dir, clip['path'])
    if os.path.exists(path):
        return False
    from model_metamers import audio
    audio.write_wav(path, make_clip(clip, all_speakers), sr=SAMPLE_RATE, sample_format='int16')
    return True


def _csv_text(rows, columns):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction='ignore', lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def make_dataset(out_dir, n_clips=8000, seed=0, jobs=None, log=print, splits=None):
    """Write the data set (see the module docstring); returns the clip plan.

    Clips already in ``out_dir/wavs`` are kept (resume). ``jobs`` worker
    processes (default: the CPU count) synthesise clips in parallel.
    ``splits``: write only the clips of these splits (e.g. ``('test',)``: the
    held-out speakers of the full set, the same clips the full set has, for a
    null distribution without synthesising the training set).
    """
    espeak_binary()
    all_speakers = speakers()
    clips = plan(n_clips, seed, all_speakers)
    if splits:
        unknown = sorted(set(splits) - {'train', 'val', 'test'})
        if unknown:
            raise SpokenWordsError('unknown split(s) %s; splits are train, val and test'
                                   % ', '.join(unknown))
        clips = [c for c in clips if c['split'] in splits]
    os.makedirs(os.path.join(out_dir, 'wavs'), exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    work = [(c, out_dir, all_speakers) for c in clips]
    written = 0
    if jobs > 1:
        import multiprocessing
        with multiprocessing.get_context('spawn').Pool(jobs) as pool:
            for k, new in enumerate(pool.imap(_write_clip, work, chunksize=16)):
                written += new
                if log and (k + 1) % 500 == 0:
                    log('%d / %d clips' % (k + 1, len(work)))
    else:
        for k, item in enumerate(work):
            written += _write_clip(item)
            if log and (k + 1) % 500 == 0:
                log('%d / %d clips' % (k + 1, len(work)))
    fileio.write_text(os.path.join(out_dir, 'clips.csv'), _csv_text(
        clips, ['path', 'word', 'split', 'speaker', 'rate', 'pitch', 'amplitude', 'background',
                'snr_db', 'level_db', 'seed']))
    rows = [{'path': c['path'], 'label': c['word'], 'split': c['split']} for c in clips]
    fileio.write_text(os.path.join(out_dir, 'labels.csv'), _csv_text(rows, ['path', 'label', 'split']))
    if log:
        sizes = {k: (v if not splits or k in splits else 0) for k, v in split_sizes(n_clips).items()}
        log('%s: %d clips (%d new), train/val/test %d/%d/%d, %d speakers'
            % (out_dir, len(clips), written, sizes['train'], sizes['val'], sizes['test'],
               len(all_speakers)))
    return clips


def main(argv):
    from absl import flags
    FLAGS = flags.FLAGS
    if not FLAGS.out:
        print('error: --out is required (the folder to write the data set to)', file=sys.stderr)
        return 2
    try:
        make_dataset(FLAGS.out, FLAGS.clips, FLAGS.seed, FLAGS.jobs, splits=FLAGS.splits)
    except (SpokenWordsError, OSError) as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1
    return 0


def _define_flags():
    from absl import flags
    flags.DEFINE_string('out', None, 'output folder (wavs/, labels.csv, clips.csv)')
    flags.DEFINE_integer('clips', 8000, 'number of clips (10 % val, 10 % test, the rest train)')
    flags.DEFINE_integer('seed', 0, 'seed of the clip plan and of every random draw')
    flags.DEFINE_integer('jobs', None, 'worker processes (default: CPU count)')
    flags.DEFINE_list('splits', None, 'write only these splits of the plan (e.g. test: the held-out '
                      'speakers, for a null distribution)')


if __name__ == '__main__':
    from model_metamers import cli
    cli.run(main, _define_flags)
