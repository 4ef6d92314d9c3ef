"""A self-contained static web experiment around exported metamers (``export_experiment --html``).

The folder written by :func:`write` opens from disk or any static host (Prolific, MTurk, Pavlovia):
``index.html``, ``experiment.js``, ``experiment.css`` (the files beside this module, copied),
``experiment_data.js`` (the trial list and settings, a script so that no server is needed to read it)
and, for audio, ``headphone_check/*.wav``. Results are a CSV per participant (columns in
:data:`RESULT_COLUMNS`), downloaded by the participant or POSTed to ``post_url``;
:mod:`model_metamers.human_results` analyses them.

Answer choices: audio uses the paper's word task (the 793 words of the 794-way classifier, without its
null class, plus any correct answer that is not one of them); images use the 16 categories of the
16-way task, an ImageNet class name being replaced by its category.
"""

import json
import os
import shutil
import urllib.parse

import numpy as np

from model_metamers import resources
from model_metamers.export_experiment import ExportError
from model_metamers.fileio import atomic_path, write_text

STATIC_DIR = os.path.dirname(os.path.abspath(__file__))
STATIC_FILES = ('index.html', 'experiment.js', 'experiment.css')
# What write() adds to an export folder (recorded so that export --overwrite removes it again).
WRITTEN = STATIC_FILES + ('experiment_data.js', 'headphone_check')
RESULT_COLUMNS = ['participant', 'seed', 'trial', 'kind', 'condition', 'network', 'layer', 'input', 'stimulus',
                  'response', 'correct_answer', 'correct', 'rt_ms', 'catch', 'practice', 'network_answer',
                  'layer_index', 'n_choices', 'network_natural_answer']
NATURAL = 'natural'
HEADPHONE_RATE = 22050  # Hz; the check's tones are 200 Hz


class ExperimentError(ExportError):
    """Settings or answers that make no usable experiment."""


def word_choices():
    """The word task's answers: the 794-way classes without the null class ``__nullSignal__``."""
    return [w for w in resources.word_classes() if not w.startswith('__')]


def image_category(name):
    """The 16-way category of an answer: itself if it is a category, else its ImageNet class's; else None."""
    categories = resources.imagenet_16class_indices()
    if name in categories:
        return name
    classes = resources.imagenet_classes()
    for category, indices in categories.items():
        if any(classes[i] == name for i in indices):
            return category
    return None


def _url(path):
    return urllib.parse.quote(path.replace(os.sep, '/'))


def _check_settings(catch_rate, practice, headphone_checks, post_url):
    if not 0 <= catch_rate < 1:
        raise ExperimentError('--catch_rate must be at least 0 and below 1 (a share of the main trials), '
                              'got %g; e.g. --catch_rate=0.1' % catch_rate)
    if practice < 0 or headphone_checks < 0:
        raise ExperimentError('--practice and --headphone_checks must be 0 or more, got %d and %d'
                              % (practice, headphone_checks))
    if post_url and not post_url.startswith(('http://', 'https://')):
        raise ExperimentError('--post_url must be an http:// or https:// address, got %r' % post_url)


def _answers(rows, modality):
    """``(choices, {original answer: answer shown}, added)`` for the trials' correct answers."""
    missing = sorted({r['input'] for r in rows if not str(r['correct_answer']).strip()})
    if missing:
        raise ExperimentError('no correct answer for input(s) %s; give them in --labels (CSV input,label)'
                              % ', '.join(missing))
    answers = sorted({str(r['correct_answer']) for r in rows})
    if modality == 'image':
        mapping = {a: image_category(a) for a in answers}
        bad = [a for a, c in mapping.items() if c is None]
        if bad:
            raise ExperimentError('answer(s) %s are none of the 16 categories (%s) nor an ImageNet class of '
                                  'one; give the category per input in --labels'
                                  % (', '.join(bad), ', '.join(sorted(resources.imagenet_16class_indices()))))
        return sorted(resources.imagenet_16class_indices()), mapping, []
    words = word_choices()
    known = set(words)
    added = [a for a in answers if a not in known]
    return words + added, {a: a for a in answers}, added


def _tone_sequence(loud_positions, rng, tone_s=0.5, gap_s=0.3, amplitude=0.3):
    """Stereo ``[n, 2]`` float: three 200 Hz tones; per position 'quiet' (-6 dB), 'antiphase' or 'normal'."""
    n_tone = int(tone_s * HEADPHONE_RATE)
    t = np.arange(n_tone) / HEADPHONE_RATE
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms on/off ramps: no clicks
    tone = amplitude * np.sin(2 * np.pi * 200 * t + rng.uniform(0, 2 * np.pi)) * ramp
    gap = np.zeros((int(gap_s * HEADPHONE_RATE), 2))
    parts = [gap]
    for kind in loud_positions:
        if kind == 'quiet':
            parts.append(np.stack([tone, tone], 1) * 0.5)
        elif kind == 'antiphase':
            parts.append(np.stack([tone, -tone], 1))
        else:
            parts.append(np.stack([tone, tone], 1))
        parts.append(gap)
    return np.concatenate(parts)


def _write_headphone_checks(output_dir, n, seed):
    """Write ``n`` three-tone WAVs; returns ``[{'file', 'answer'}]`` (answer: 1-3, the quiet tone)."""
    import scipy.io.wavfile

    rng = np.random.default_rng(seed)
    items = []
    for k in range(n):
        kinds = ['quiet', 'antiphase', 'normal']
        rng.shuffle(kinds)
        rel = os.path.join('headphone_check', 'check%d.wav' % (k + 1))
        with atomic_path(os.path.join(output_dir, rel), '.wav') as tmp:
            data = np.round(_tone_sequence(kinds, rng) * 32767).astype(np.int16)
            scipy.io.wavfile.write(tmp, HEADPHONE_RATE, data)
        items.append({'file': _url(rel), 'answer': kinds.index('quiet') + 1})
    return items


def _loudest_natural(output_dir, naturals):
    """The natural sound with the highest RMS (the loudest stimulus after loudness matching)."""
    from model_metamers import audio

    def rms(rel):
        x, _ = audio.read_wav(os.path.join(output_dir, rel))
        return float(np.sqrt(np.mean(np.square(x))))
    return max(naturals, key=rms)


def check(items, modality, catch_rate=0.1, practice=2, headphone_checks=6, post_url=''):
    """Refuse settings or answers :func:`write` cannot use, before anything is written.

    ``items``: dicts with keys input and answer (the correct answer).
    """
    _check_settings(catch_rate, practice, headphone_checks, post_url)
    _answers([{'input': it['input'], 'correct_answer': it['answer']} for it in items], modality)


def write(output_dir, rows, modality, catch_rate=0.1, practice=2, headphone_checks=6, post_url='',
          seed=0, title=None):
    """Write the web experiment into ``output_dir`` (which already holds the stimuli of ``rows``).

    Args:
      rows: the trial rows of :func:`model_metamers.export_experiment.export` (keys condition, network,
        layer, input, stimulus, natural, correct_answer, network_answer; paths relative to output_dir).
      modality: 'audio' or 'image'.
      catch_rate: catch trials per main trial (one natural stimulus at a random place in each block of
        about 1/catch_rate main trials).
      practice: practice trials (natural stimuli, with feedback) before the main trials.
      headphone_checks: three-tone headphone-check trials at the start (audio only).
      post_url: where the page POSTs the results CSV ('' = download only).
      seed: seed of the headphone-check tone order (the trial order is drawn per participant in the page).

    Returns:
      The data written to ``experiment_data.js`` (a dict).
    """
    _check_settings(catch_rate, practice, headphone_checks, post_url)
    choices, shown, added = _answers(rows, modality)
    def network_answer(name):
        name = str(name)
        return (image_category(name) or 'other') if modality == 'image' and name else name

    trials = [{'stimulus': _url(r['stimulus']), 'condition': r['condition'], 'network': r['network'],
               'layer': r['layer'], 'layer_index': int(r.get('layer_index', 0)), 'input': r['input'], 'correct_answer': shown[str(r['correct_answer'])],
               'network_answer': network_answer(r.get('network_answer', '')),
               'network_natural_answer': network_answer(r.get('network_natural_answer', ''))}
              for r in rows]
    naturals = {}
    for r in rows:
        naturals.setdefault(r['natural'], {'stimulus': _url(r['natural']), 'input': r['input'],
                                           'correct_answer': shown[str(r['correct_answer'])]})
    # The natural condition of the paper's figures: every natural stimulus once among the main trials.
    trials += [dict(n, condition=NATURAL, network='', layer=NATURAL, layer_index=-1, network_answer='') for n in naturals.values()]
    data = {'title': title or ('Word recognition experiment' if modality == 'audio'
                               else 'Image recognition experiment'),
            'modality': modality, 'choices': choices, 'choices_added': added, 'trials': trials,
            'naturals': list(naturals.values()), 'practice': int(practice), 'catch_rate': float(catch_rate),
            'post_url': post_url or '', 'headphone': [], 'calibration': ''}
    if modality == 'audio':
        data['headphone'] = _write_headphone_checks(output_dir, headphone_checks, seed)
        data['calibration'] = _url(_loudest_natural(output_dir, list(naturals)))
    write_text(os.path.join(output_dir, 'experiment_data.js'),
               '// Written by model_metamers.export_experiment --html; read by experiment.js.\n'
               'window.EXPERIMENT_DATA = %s;\n' % json.dumps(data, indent=1))
    for name in STATIC_FILES:
        with atomic_path(os.path.join(output_dir, name)) as tmp:
            if name == 'index.html':
                with open(os.path.join(STATIC_DIR, name), encoding='utf-8') as f:
                    page = f.read().replace('__TITLE__', _html_escape(data['title']))
                with open(tmp, 'w', encoding='utf-8') as f:
                    f.write(page)
            else:
                shutil.copyfile(os.path.join(STATIC_DIR, name), tmp)
    return data


def _html_escape(text):
    return text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
