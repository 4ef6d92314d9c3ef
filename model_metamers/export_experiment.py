"""Export metamers for a human recognition experiment.

Usage::

    python -m model_metamers.export_experiment --results_dir=metamers_out/word_reduced_aliasing \\
        --output_dir=experiment/ [--labels=labels.csv] [--only_passed] [--overwrite] [--html]

Writes one folder per condition (``<network>__<layer>``) with the metamers
(WAV at the network's sample rate for audio, PNG for images), a ``natural/``
folder with the natural stimuli, ``trials.csv`` (shuffled, seeded: trial,
condition, stimulus file, natural file, correct answer, validation result) and
``export_info.json``. ``--output_dir`` must be new or empty; ``--overwrite``
replaces an earlier export there. The correct answer is the input's label in
``--labels`` (every input needs one, and it must be a class of the network), else
the network's class for the natural stimulus (a warning when networks disagree).
``trials.csv`` also gives the network's answers for each metamer and its natural stimulus,
and the layer's index.
With ``--html`` the folder is also a static web experiment (``index.html``; see
:mod:`model_metamers.experiment_html`).

Audio is loudness-matched: every metamer gets the RMS of its natural sound.
Then one common gain, applied to every file, keeps all peaks below 0.99 so
16-bit files cannot clip while relative levels stay as matched.
"""

import csv
import io
import json
import os
import shutil
import sys

import numpy as np

from model_metamers.errors import UserError
from model_metamers.fileio import write_text
from model_metamers import results as _results


class ExportError(UserError, ValueError):
    """Nothing to export, or inconsistent inputs."""


def _rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def gather(results_dirs, only_passed=False, note=None):
    """Conditions and stimuli from result folders: list of dicts.

    ``.h5`` files that are not metamer results are skipped with a note.
    """
    items = []
    for results_dir in results_dirs:
        found = list(_results.records(results_dir, note))  # every seed's metamer of each input
        if not found:
            raise ExportError('no result files in %s; give the <output_dir>/<network> folder of a '
                              'run_generation.py run' % results_dir)
        for rec in found:
            meta, attrs = rec.file_attrs, rec.attrs
            network = str(meta.get('network', os.path.basename(os.path.normpath(results_dir))))
            if attrs.get('domain') == 'cochleagram':
                raise ExportError('%s / %s is a cochleagram-domain metamer: it has no waveform to play'
                                  % (rec.stem, rec.layer))
            if only_passed and not bool(attrs['passed']):
                continue
            items.append({'network': network, 'layer': rec.layer, 'input': rec.stem, 'seed': rec.seed,
                          'modality': str(meta.get('modality', 'audio')),
                          'sample_rate': int(meta.get('sample_rate', 20000) or 20000),
                          'metamer': rec.datasets['metamer'],
                          'natural': rec.datasets['natural'],
                          'passed': bool(attrs['passed']),
                          'spearman': float(attrs['spearman_matched']),
                          'metamer_class': str(attrs.get('metamer_class_name', '')),
                          'layer_index': int(attrs.get('layer_index', 0)),
                          'natural_class': str(attrs.get('natural_class_name', 'none'))})
    if not items:
        raise ExportError('no metamers to export%s' % (' (none passed validation)' if only_passed else ''))
    return items


# What an export writes at the top of its folder besides the condition folders.
_OWN_FILES = ('trials.csv', 'export_info.json', 'natural')


def _owned_entries(output_dir):
    """Top-level names an earlier export wrote in ``output_dir`` (None: it holds no earlier export)."""
    info_path = os.path.join(output_dir, 'export_info.json')
    trials_path = os.path.join(output_dir, 'trials.csv')
    if not (os.path.isfile(info_path) or os.path.isfile(trials_path)):
        return None
    names = set(_OWN_FILES)
    try:
        with open(info_path, encoding='utf-8') as f:
            names.update(json.load(f).get('written', []))
    except (OSError, ValueError, AttributeError):
        pass
    try:
        with open(trials_path, newline='', encoding='utf-8') as f:
            names.update(row['condition'] for row in csv.DictReader(f) if row.get('condition'))
    except (OSError, KeyError, csv.Error):
        pass
    # Only plain names of this folder: a doctored record must not reach outside it.
    return sorted(n for n in names if n and os.path.basename(n) == n and n not in ('.', '..'))


def prepare_output_dir(output_dir, overwrite=False):
    """Check ``output_dir`` can take a new export; returns the earlier export's entries to remove.

    A new or empty folder is fine. A non-empty one is refused unless
    ``overwrite``, and even then only when it holds an earlier export (its
    ``export_info.json`` / ``trials.csv``): exactly what that export wrote is
    removed (by :func:`clear_owned`), so no stale condition folder or WAV stays
    beside the new ``trials.csv``. Nothing is removed here.
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ExportError('--output_dir %s is a file, not a folder; give a new folder (e.g. experiment/)'
                          % output_dir)
    here = sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else []
    if not here:
        return []
    shown = ', '.join(here[:5]) + (', ...' if len(here) > 5 else '')
    if not overwrite:
        raise ExportError('--output_dir %s is not empty (it holds %s); choose a new folder, or pass '
                          '--overwrite to replace an earlier export there' % (output_dir, shown))
    owned = _owned_entries(output_dir)
    if owned is None:
        raise ExportError('--output_dir %s holds files that are not an earlier export (%s); --overwrite '
                          'only replaces an export (with its trials.csv): choose a new folder'
                          % (output_dir, shown))
    return [n for n in owned if n in here]


def clear_owned(output_dir, names):
    """Remove the entries ``names`` (from :func:`prepare_output_dir`) of ``output_dir``."""
    for name in names:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


_CLASS_NAMES = {}


def _class_names(network_name):
    """Class names of a registered network (None: not registered here, or it has none).

    Built once per network with random weights: the names do not depend on them.
    """
    if network_name not in _CLASS_NAMES:
        from model_metamers import networks
        try:
            names = list(networks.build(network_name, weights='random').class_names)
        except (ValueError, KeyError, ImportError):
            names = None
        _CLASS_NAMES[network_name] = names or None
    return _CLASS_NAMES[network_name]


def correct_answers(items, labels=None, note=None):
    """Set ``item['answer']`` for every item: the one labels rule of transfer and export.

    With ``labels`` every input needs a row whose label is a class of the
    item's network (``transfer.label_of``: an error otherwise). Without, the
    answer is the network's prediction for the natural stimulus; when two
    networks predict different classes for one input, ``note`` is told (one
    trials.csv would mark one stimulus right under two answers).
    """
    from model_metamers.transfer import TransferError, label_of

    note = note or (lambda message: print(message, file=sys.stderr))
    for it in items:
        if labels is not None:
            try:
                it['answer'] = label_of(labels, it['input'], _class_names(it['network']), it['network'])
            except TransferError as exc:
                raise ExportError(str(exc)) from None
        else:
            it['answer'] = it['natural_class']
    if labels is None:
        answers = {}
        for it in items:
            answers.setdefault(it['input'], {}).setdefault(it['answer'], it['network'])
        for stem, by_answer in sorted(answers.items()):
            if len(by_answer) > 1:
                note('warning: input %s has different correct answers in trials.csv (%s): the networks '
                     'classify its natural stimulus differently; pass --labels to give one answer'
                     % (stem, ', '.join('%s by %s' % kv for kv in by_answer.items())))


def export(results_dirs, output_dir, labels=None, seed=0, only_passed=False, sample_format='int16',
           overwrite=False, note=None, html=None):
    """Write the experiment folder; returns the trial rows.

    ``output_dir`` must be new or empty; ``overwrite`` replaces an earlier export there.
    ``html``: None, or the keyword arguments of :func:`model_metamers.experiment_html.write`
    (catch_rate, practice, headphone_checks, post_url) to make the folder a web experiment.
    """
    from model_metamers import audio

    if seed < 0:
        raise ExportError('--seed must be 0 or more, got %d; pass e.g. --seed=0' % seed)
    if any(os.path.realpath(output_dir) == os.path.realpath(d) for d in results_dirs):
        raise ExportError('--output_dir %s is a --results_dir; choose a separate folder for the '
                          'experiment (e.g. experiment/)' % output_dir)
    stale = prepare_output_dir(output_dir, overwrite)
    items = gather(results_dirs, only_passed, note)
    kinds = sorted({(it['modality'], it['sample_rate'] if it['modality'] == 'audio' else 0) for it in items})
    if len(kinds) > 1:
        # One experiment plays or shows one kind of stimulus; the naturals are shared by input name.
        raise ExportError('the results mix %s; export each kind to its own --output_dir'
                          % ' and '.join('%s at %d Hz' % k if k[1] else '%ss' % k[0] for k in kinds))
    correct_answers(items, labels, note)
    modality = items[0]['modality']
    if html is not None:
        from model_metamers import experiment_html
        experiment_html.check(items, modality, **html)  # before anything is written
    if modality == 'audio':
        for it in items:
            gain = _rms(it['natural']) / max(_rms(it['metamer']), 1e-30)
            it['sound'] = np.asarray(it['metamer'], np.float64) * gain
        peak = max(max(np.max(np.abs(it['sound'])) for it in items),
                   max(np.max(np.abs(it['natural'])) for it in items))
        gain = min(1.0, 0.99 / peak) if peak > 0 else 1.0
    else:
        gain = 1.0
    ext = '.wav' if modality == 'audio' else '.png'
    clear_owned(output_dir, stale)
    os.makedirs(output_dir, exist_ok=True)
    rows = []
    written_natural = set()
    for it in items:
        condition = '%s__%s' % (it['network'], _results.layer_file_name(it['layer']))
        stim = os.path.join(condition, _results.result_key(it['input'], it['seed']) + ext)
        nat = os.path.join('natural', it['input'] + ext)
        if modality == 'audio':
            audio.write_wav(os.path.join(output_dir, stim), it['sound'] * gain, it['sample_rate'],
                            sample_format=sample_format)
            if nat not in written_natural:
                audio.write_wav(os.path.join(output_dir, nat), np.asarray(it['natural']) * gain,
                                it['sample_rate'], sample_format=sample_format)
        else:
            from model_metamers import images
            images.save_png(os.path.join(output_dir, stim), it['metamer'])
            if nat not in written_natural:
                images.save_png(os.path.join(output_dir, nat), it['natural'])
        written_natural.add(nat)
        rows.append({'condition': condition, 'network': it['network'], 'layer': it['layer'],
                     'input': it['input'], 'seed': it['seed'], 'stimulus': stim, 'natural': nat,
                     'correct_answer': it['answer'], 'passed': it['passed'],
                     'spearman': '%.5f' % it['spearman'],
                     'network_answer': it['metamer_class'], 'layer_index': it['layer_index'],
                     'network_natural_answer': it['natural_class']})
    order = np.random.default_rng(seed).permutation(len(rows))
    rows = [dict(trial=k + 1, **rows[i]) for k, i in enumerate(order)]
    fields = ['trial', 'condition', 'network', 'layer', 'input', 'seed', 'stimulus', 'natural',
              'correct_answer', 'passed', 'spearman', 'network_answer', 'layer_index',
              'network_natural_answer']
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(output_dir, 'trials.csv'), buf.getvalue())
    info = {'modality': modality, 'n_trials': len(rows), 'seed': seed, 'common_gain': gain,
            'sample_rate': items[0]['sample_rate'] if modality == 'audio' else None,
            'loudness_matching': 'metamer RMS set to its natural sound RMS, then one common gain'
                                 if modality == 'audio' else 'none', 'sample_format': sample_format,
            'results_dirs': list(results_dirs), 'only_passed': only_passed,
            'written': sorted(set(_OWN_FILES) | {r['condition'] for r in rows})}
    if html is not None:
        from model_metamers import experiment_html
        data = experiment_html.write(output_dir, rows, modality, seed=seed, **html)
        info.update(html=dict(html), choices_added=data['choices_added'])
        info['written'] = sorted(set(info['written']) | set(experiment_html.WRITTEN))
    write_text(os.path.join(output_dir, 'export_info.json'), json.dumps(info, indent=2))
    return rows


def main(argv):
    from absl import flags
    from model_metamers.experiment_html import ExperimentError
    from model_metamers.transfer import TransferError, load_labels

    FLAGS = flags.FLAGS
    try:
        labels = load_labels(FLAGS.labels) if FLAGS.labels else None
        html = (dict(catch_rate=FLAGS.catch_rate, practice=FLAGS.practice, headphone_checks=FLAGS.headphone_checks,
                     post_url=FLAGS.post_url or '') if FLAGS.html else None)
        rows = export([d for d in FLAGS.results_dir.split(',') if d], FLAGS.output_dir, labels,
                      FLAGS.seed, FLAGS.only_passed, FLAGS.sample_format, FLAGS.overwrite, html=html)
    except (ExportError, ExperimentError, TransferError, OSError) as exc:  # run as __main__, ExportError
        # is this file's own class, not the one ExperimentError derives from
        print('error: %s' % exc, file=sys.stderr)
        return 1
    print('exported %d trials to %s' % (len(rows), FLAGS.output_dir))
    if FLAGS.html:
        print('web experiment: %s' % os.path.join(FLAGS.output_dir, 'index.html'))
    return 0


def _define_flags():
    from absl import flags
    flags.DEFINE_string('results_dir', None, 'comma-separated <output_dir>/<network> folders')
    flags.DEFINE_string('output_dir', 'experiment', 'experiment folder to write')
    flags.DEFINE_string('labels', None, 'CSV input,label with the correct answer per input')
    flags.DEFINE_integer('seed', 0, 'seed of the trial order')
    flags.DEFINE_boolean('only_passed', False, 'export only metamers that passed validation')
    flags.DEFINE_enum('sample_format', 'int16', ['int16', 'float32'], 'WAV sample format')
    flags.DEFINE_boolean('overwrite', False, 'replace an earlier export in --output_dir (removes '
                         'what that export wrote; other files are left alone)')
    flags.DEFINE_boolean('html', False, 'also write a static web experiment (index.html) into the folder')
    flags.DEFINE_float('catch_rate', 0.1, '--html: catch trials (natural stimuli) per main trial')
    flags.DEFINE_integer('practice', 2, '--html: practice trials (natural stimuli, with feedback)')
    flags.DEFINE_integer('headphone_checks', 6, '--html, audio: three-tone headphone-check trials')
    flags.DEFINE_string('post_url', None, '--html: URL the page POSTs the results CSV to (else download only)')
    flags.mark_flag_as_required('results_dir')


if __name__ == '__main__':
    from model_metamers import cli
    cli.run(main, _define_flags)
