"""The espeak-ng spoken-word data set: CSV, splits, WAV format, resume, missing espeak-ng."""

import csv
import os
import shutil

import numpy as np
import pytest
import scipy.io.wavfile

from model_metamers import spoken_words

needs_espeak = pytest.mark.skipif(shutil.which('espeak-ng') is None,
                                  reason='espeak-ng is not installed (apt-get install espeak-ng; '
                                         'make test installs it)')


def _rows(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_plan_is_balanced_and_speaker_disjoint():
    speakers = ['v%02d' % i for i in range(30)]
    clips = spoken_words.plan(8000, 0, speakers)
    assert spoken_words.split_sizes(8000) == {'train': 6400, 'val': 800, 'test': 800}
    for split, n in [('train', 6400), ('val', 800), ('test', 800)]:
        words = [c['word'] for c in clips if c['split'] == split]
        assert len(words) == n
        assert {w: words.count(w) for w in spoken_words.WORDS} == {w: n // 8 for w in spoken_words.WORDS}
    by_split = {s: {c['speaker'] for c in clips if c['split'] == s} for s in ('train', 'val', 'test')}
    assert not (by_split['train'] & by_split['test']) and not (by_split['train'] & by_split['val'])
    assert not (by_split['val'] & by_split['test'])
    assert spoken_words.plan(8000, 0, speakers) == clips  # deterministic
    assert spoken_words.plan(8000, 1, speakers) != clips


def test_missing_espeak_is_one_line_with_the_fix(monkeypatch):
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    with pytest.raises(spoken_words.SpokenWordsError) as err:
        spoken_words.make_dataset('/nonexistent/never', n_clips=4)
    assert '\n' not in str(err.value)
    assert 'apt-get install espeak-ng' in str(err.value) and 'make spoken-words' in str(err.value)


@needs_espeak
def test_tiny_dataset(tmp_path):
    out = str(tmp_path / 'sw')
    spoken_words.make_dataset(out, n_clips=16, seed=0, jobs=1, log=None)
    rows = _rows(os.path.join(out, 'labels.csv'))
    with open(os.path.join(out, 'labels.csv')) as f:
        assert f.readline().strip() == 'path,label,split'
    assert len(rows) == 16
    assert [sum(r['split'] == s for r in rows) for s in ('train', 'val', 'test')] == [12, 2, 2]
    assert {r['label'] for r in rows if r['split'] == 'train'} == set(spoken_words.WORDS)
    settings = {r['path']: r for r in _rows(os.path.join(out, 'clips.csv'))}
    train_speakers = {settings[r['path']]['speaker'] for r in rows if r['split'] == 'train'}
    test_speakers = {settings[r['path']]['speaker'] for r in rows if r['split'] == 'test'}
    assert not train_speakers & test_speakers
    for r in rows:
        assert r['path'].startswith('wavs/') and r['label'] in r['path']
        sr, x = scipy.io.wavfile.read(os.path.join(out, r['path']))
        assert sr == 16000 and x.dtype == np.int16 and x.shape == (16000,)
        assert np.sqrt(np.mean((x / 32768.0) ** 2)) > 1e-3  # not silent
    # resume: nothing is re-made; a removed clip is made again, identically
    first = os.path.join(out, rows[0]['path'])
    before = open(first, 'rb').read()
    os.remove(first)
    written = []
    spoken_words.make_dataset(out, n_clips=16, seed=0, jobs=1, log=written.append)
    assert '(1 new)' in written[-1]
    assert open(first, 'rb').read() == before
