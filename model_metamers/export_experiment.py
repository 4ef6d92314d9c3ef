"""Export metamers for a human recognition experiment.

Usage::

    python -m model_metamers.export_experiment --results_dir=metamers_out/word_reduced_aliasing \
        --output_dir=experiment/ [--labels=labels.csv] [--only_passed]

Writes one folder per condition (``<network>__<layer>``) with the metamers
(WAV for audio, PNG for images), a ``natural/`` folder with the natural stimuli,
``trials.csv`` (shuffled, seeded: trial, condition, stimulus file, natural file,
correct answer, validation result) and ``export_info.json``.

Audio is loudness-matched: every metamer gets the RMS of its natural sound.
Then one common gain, applied to every file, keeps all peaks below 0.99 so
16-bit files cannot clip while relative levels stay as matched.
"""

import csv
import glob
import io
import json
import os
import sys

import numpy as np

from model_metamers.fileio import write_text
from model_metamers import results as _results


class ExportError(ValueError):
    """Nothing to export, or inconsistent inputs."""


def _rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def gather(results_dirs, only_passed=False):
    """Conditions and stimuli from result folders: list of dicts."""
    items = []
    for results_dir in results_dirs:
        files = sorted(glob.glob(os.path.join(results_dir, '*.h5')))
        if not files:
            raise ExportError('no result files in %s; give the <output_dir>/<network> folder of a '
                              'run_generation.py run' % results_dir)
        for path in files:
            res = _results.read_result(path)
            meta = res['_file']
            network = meta.get('network', os.path.basename(os.path.normpath(results_dir)))
            network = network.decode() if isinstance(network, bytes) else str(network)
            stem = os.path.splitext(os.path.basename(path))[0]
            for layer, entry in res.items():
                if layer == '_file':
                    continue
                attrs = entry['attrs']
                if attrs.get('domain') in ('cochleagram', b'cochleagram'):
                    raise ExportError('%s / %s is a cochleagram-domain metamer: it has no waveform to play'
                                      % (stem, layer))
                if only_passed and not bool(attrs['passed']):
                    continue
                name = attrs.get('natural_class_name', 'none')
                items.append({'network': network, 'layer': layer, 'input': stem,
                              'modality': str(meta.get('modality', 'audio')),
                              'sample_rate': int(meta.get('sample_rate', 20000) or 20000),
                              'metamer': entry['datasets']['metamer'],
                              'natural': entry['datasets']['natural'],
                              'passed': bool(attrs['passed']),
                              'spearman': float(attrs['spearman_matched']),
                              'natural_class': name.decode() if isinstance(name, bytes) else str(name)})
    if not items:
        raise ExportError('no metamers to export%s' % (' (none passed validation)' if only_passed else ''))
    return items


def export(results_dirs, output_dir, labels=None, seed=0, only_passed=False, sample_format='int16'):
    """Write the experiment folder; returns the trial rows."""
    from model_metamers import audio

    if seed < 0:
        raise ExportError('--seed must be 0 or more, got %d; pass e.g. --seed=0' % seed)
    if any(os.path.realpath(output_dir) == os.path.realpath(d) for d in results_dirs):
        raise ExportError('--output_dir %s is a --results_dir; choose a separate folder for the '
                          'experiment (e.g. experiment/)' % output_dir)
    items = gather(results_dirs, only_passed)
    kinds = sorted({(it['modality'], it['sample_rate'] if it['modality'] == 'audio' else 0) for it in items})
    if len(kinds) > 1:
        # One experiment plays or shows one kind of stimulus; the naturals are shared by input name.
        raise ExportError('the results mix %s; export each kind to its own --output_dir'
                          % ' and '.join('%s at %d Hz' % k if k[1] else '%ss' % k[0] for k in kinds))
    modality = items[0]['modality']
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
    os.makedirs(output_dir, exist_ok=True)
    rows = []
    written_natural = set()
    for it in items:
        condition = '%s__%s' % (it['network'], _results.layer_file_name(it['layer']))
        stim = os.path.join(condition, it['input'] + ext)
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
        answer = labels.get(it['input'], '') if labels else it['natural_class']
        rows.append({'condition': condition, 'network': it['network'], 'layer': it['layer'],
                     'input': it['input'], 'stimulus': stim, 'natural': nat, 'correct_answer': answer,
                     'passed': it['passed'], 'spearman': '%.5f' % it['spearman']})
    order = np.random.default_rng(seed).permutation(len(rows))
    rows = [dict(trial=k + 1, **rows[i]) for k, i in enumerate(order)]
    fields = ['trial', 'condition', 'network', 'layer', 'input', 'stimulus', 'natural',
              'correct_answer', 'passed', 'spearman']
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(output_dir, 'trials.csv'), buf.getvalue())
    info = {'modality': modality, 'n_trials': len(rows), 'seed': seed, 'common_gain': gain,
            'loudness_matching': 'metamer RMS set to its natural sound RMS, then one common gain'
                                 if modality == 'audio' else 'none', 'sample_format': sample_format,
            'results_dirs': list(results_dirs), 'only_passed': only_passed}
    write_text(os.path.join(output_dir, 'export_info.json'), json.dumps(info, indent=2))
    return rows


def main(argv):
    from absl import flags
    from model_metamers.transfer import TransferError, load_labels

    FLAGS = flags.FLAGS
    try:
        labels = load_labels(FLAGS.labels) if FLAGS.labels else None
        rows = export([d for d in FLAGS.results_dir.split(',') if d], FLAGS.output_dir, labels,
                      FLAGS.seed, FLAGS.only_passed, FLAGS.sample_format)
    except (ExportError, TransferError, OSError) as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1
    print('exported %d trials to %s' % (len(rows), FLAGS.output_dir))
    return 0


def _define_flags():
    from absl import flags
    flags.DEFINE_string('results_dir', None, 'comma-separated <output_dir>/<network> folders')
    flags.DEFINE_string('output_dir', 'experiment', 'experiment folder to write')
    flags.DEFINE_string('labels', None, 'CSV input,label with the correct answer per input')
    flags.DEFINE_integer('seed', 0, 'seed of the trial order')
    flags.DEFINE_boolean('only_passed', False, 'export only metamers that passed validation')
    flags.DEFINE_enum('sample_format', 'int16', ['int16', 'float32'], 'WAV sample format')
    flags.mark_flag_as_required('results_dir')


if __name__ == '__main__':
    from model_metamers import cli
    cli.run(main, _define_flags)
