"""Validation reports of a network's metamers (Tables S4/S5 and Figures S1-S8 of the paper).

Usage::

    python -m model_metamers.reports --results_dir=metamers_out/word_reduced_aliasing \\
        --null_distribution=nulls/word_reduced_aliasing.h5 --output_dir=reports/

Writes ``<network>_table.csv`` / ``.md`` (per generation layer: metamers generated,
metamers passing, median Spearman rho at the layer, median null rho at the layer,
median rho at the logits; for metamers of ``--procedure=feather2023`` also the
median Pearson r and 2023 dB SNR at the layer with their null maxima, the 2023
criterion's thresholds) and ``<network>_histograms.png`` (for every generation
layer, the metamer-vs-natural rho at every measured layer against the null),
one set per network found in ``--results_dir``. Other ``.h5`` files there are
skipped with a note; a null made for another network or weights is refused.

``--human=<folder of result CSVs>`` reports the web experiment's participants instead (or as
well): see :mod:`model_metamers.human_results`.
"""

import csv
import io
import os
import sys

import numpy as np

from model_metamers.errors import UserError
from model_metamers.fileio import save_figure, write_text
from model_metamers import published_nulls, validation
from model_metamers import results as _results
from model_metamers.validation import load_null


class ReportError(UserError, ValueError):
    """No results to report on, or a null that does not fit them."""


def collect(results_dir, note=None):
    """Every layer result under ``results_dir``: list of dicts (input, layer, rho per measured layer, ...).

    ``.h5`` files that are not metamer results are skipped with a note (see
    :func:`model_metamers.results.read_results_folder`).
    """
    found = list(_results.records(results_dir, note))  # every seed's metamer counts
    if not found:
        raise ReportError('no result files (*.h5) in %s; run run_generation.py first (or --merge '
                          'after sharded runs)' % results_dir)
    return [{'input': rec.stem, 'layer': rec.layer, 'seed': rec.seed,
             'network': str(rec.file_attrs.get('network', '')),
             'weights_sha1': rec.attrs.get('weights_sha1'),
             'rho': dict(zip([str(n) for n in rec.datasets['spearman_layers']],
                             rec.datasets['spearman_all_layers'])),
             'spearman_matched': float(rec.attrs['spearman_matched']),
             'same_class': rec.attrs['same_class'], 'passed': bool(rec.attrs['passed']),
             'layer_index': int(rec.attrs.get('layer_index', 0)),
             'procedure': str(rec.attrs.get('validation_procedure', 'feather2019')),
             'pearson_matched': float(rec.attrs.get('pearson_matched', np.nan)),
             'snr_db_matched': float(rec.attrs.get('snr_db_matched', np.nan)),
             'null_max_pearson': float(rec.attrs.get('null_max_pearson', np.nan)),
             'null_max_snr_db': float(rec.attrs.get('null_max_snr_db', np.nan))}
            for rec in found]


def _same_class(value):
    if isinstance(value, (bytes, str)):
        return None if value in (b'none', 'none') else value in (b'True', 'True')
    return bool(value)


def layer_table(records, layer_order, null=None, logits_name=None, null_measures=None):
    """Rows of the Table S4/S5-style summary, one per generation layer in ``layer_order``.

    With a null, ``passed`` is recomputed with the paper's criterion (same class
    and rho above the null maximum at the matched layer); otherwise the stored
    ``passed`` attribute is used. Metamers validated by the 2023 criterion
    (``procedure`` feather2023) are recomputed with it when ``null_measures``
    (``load_null(path, measures=True)``) is given, and their rows add
    ``median_pearson``, ``max_null_pearson``, ``median_snr_db_2023`` and
    ``max_null_snr_db_2023`` (the stored thresholds without a null).
    """
    rows = []
    for layer in layer_order:
        recs = [r for r in records if r['layer'] == layer]
        if not recs:
            continue
        rhos = np.array([r['spearman_matched'] for r in recs])
        null_rho = null.get(layer) if null else None
        if null is not None and null_rho is None:
            raise ReportError('the null distribution has no layer %r' % layer)
        new = [r for r in recs if r.get('procedure') == 'feather2023']
        limits = _limits_2023(null_measures, layer, new)
        if null_rho is not None:
            passed = [_passes_2023(r, limits) if r.get('procedure') == 'feather2023' else
                      validation.passes(_same_class(r['same_class']), r['spearman_matched'], np.max(null_rho))
                      for r in recs]
        else:
            passed = [r['passed'] for r in recs]
        logits = [r['rho'][logits_name] for r in recs if logits_name in r['rho']]
        row = {'layer': layer, 'generated': len(recs), 'passed': int(np.sum(passed)),
               'median_rho': float(np.median(rhos)),
               'median_null_rho': float(np.median(null_rho)) if null_rho is not None else np.nan,
               'max_null_rho': float(np.max(null_rho)) if null_rho is not None else np.nan,
               'median_rho_logits': float(np.median(logits)) if logits else np.nan}
        if new:
            row.update(median_pearson=float(np.median([r['pearson_matched'] for r in new])),
                       max_null_pearson=limits['pearson'],
                       median_snr_db_2023=float(np.median([r['snr_db_matched'] for r in new])),
                       max_null_snr_db_2023=limits['snr_db_2023'])
        rows.append(row)
    return rows


def _limits_2023(null_measures, layer, records):
    """The 2023 thresholds at ``layer``: from the null when given, else as stored with the metamers."""
    if null_measures is not None and layer in null_measures:
        return {k: float(np.max(v)) for k, v in null_measures[layer].items()}
    stored = lambda key: float(np.max([r[key] for r in records])) if records else np.nan  # noqa: E731
    return {'spearman': np.nan, 'pearson': stored('null_max_pearson'),
            'snr_db_2023': stored('null_max_snr_db')}


def _passes_2023(record, limits):
    if np.isnan(limits['spearman']):
        return record['passed']
    measures = {'spearman': record['spearman_matched'], 'pearson': record['pearson_matched'],
                'snr_db_2023': record['snr_db_matched']}
    return validation.passes_2023(_same_class(record['same_class']), measures, limits)


COLUMNS = ['layer', 'generated', 'passed', 'median_rho', 'median_null_rho', 'max_null_rho',
           'median_rho_logits']
COLUMNS_2023 = ['median_pearson', 'max_null_pearson', 'median_snr_db_2023', 'max_null_snr_db_2023']


def _columns(rows):
    """:data:`COLUMNS`, plus :data:`COLUMNS_2023` when a row has metamers of the 2023 criterion."""
    return COLUMNS + (COLUMNS_2023 if any('median_pearson' in r for r in rows) else [])


def table_csv(rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows), extrasaction='ignore', restval='')
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ('%.4f' % v if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def table_markdown(rows, title=''):
    columns = _columns(rows)
    head = '| ' + ' | '.join(columns) + ' |'
    lines = ([('## ' + title), ''] if title else []) + [head, '|' + '---|' * len(columns)]
    for r in rows:
        lines.append('| ' + ' | '.join('%.4f' % r[c] if isinstance(r.get(c), float) else str(r.get(c, '-'))
                                       for c in columns) + ' |')
    return '\n'.join(lines) + '\n'


def histogram_grid(records, layer_order, measured, null, out_path, title=''):
    """Figure S1-S8 style grid: rows generation layers, columns measured layers.

    Red: the metamer-vs-natural rho of the metamers of that row's layer; with a
    null, grey is its distribution and a dashed line its maximum (the pass
    threshold at the matched layer).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    gen = [layer for layer in layer_order if any(r['layer'] == layer for r in records)]
    fig, axes = plt.subplots(len(gen), len(measured), figsize=(1.9 * len(measured), 1.5 * len(gen) + 0.6),
                             squeeze=False, sharex=True)
    bins = np.linspace(-1, 1, 41)
    legend = {}
    for i, g in enumerate(gen):
        for j, m in enumerate(measured):
            ax = axes[i, j]
            values = [r['rho'][m] for r in records if r['layer'] == g and m in r['rho']]
            if null and m in null:
                ax.hist(null[m], bins=bins, color='0.7', density=True, label='null (random natural pairs)')
                ax.axvline(float(np.max(null[m])), color='k', ls='--', lw=0.8, label='null maximum')
            if values:
                ax.hist(values, bins=bins, color='C3', density=True, alpha=0.8,
                        label='metamers vs their natural stimuli')
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
            ax.set_yticks([])
            if i == 0:
                ax.set_title(m, fontsize=7)
            if j == 0:
                ax.set_ylabel(g, fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel('Spearman rho', fontsize=7)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc='lower center', ncol=len(legend), fontsize=7,
                   frameon=False)
    fig.suptitle('%s (rows: generation layer, columns: measured layer%s)'
                 % (title, '' if null else '; no null distribution given'))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, out_path, dpi=90)
    plt.close(fig)


def report(results_dir, output_dir, null_distribution=None, network=None, note=None):
    """Write the table (CSV, Markdown) and the histogram grid; returns ``(paths, rows)``.

    Results of several networks in one folder get one table and figure each
    (``<network>_table.csv`` ...); their ``paths`` keys are then prefixed with
    the network's name and every row carries its ``network``. A null made for
    another network or other weights is refused (``null_distribution.check_matches``).
    """
    from model_metamers.null_distribution import check_matches

    records = collect(results_dir, note)
    fallback = os.path.basename(os.path.normpath(results_dir))
    by_network = {}
    for r in records:
        by_network.setdefault(r['network'] or fallback, []).append(r)
    null = None
    if null_distribution:
        for name, recs in by_network.items():
            for sha1 in sorted({r['weights_sha1'] for r in recs if r['weights_sha1']}) or [None]:
                check_matches(published_nulls.null_record(null_distribution), name, sha1,
                              source=null_distribution)
        null = load_null(null_distribution)
    null_measures = None
    if null_distribution and any(r.get('procedure') == 'feather2023' for r in records):
        # The 2023 criterion needs the null's Pearson r and dB SNR too (a published pickle lacks them).
        null_measures = load_null(null_distribution, measures=True)
    paths, rows = {}, []
    for name, recs in by_network.items():
        net = network if network is not None and network.name == name else None
        these_paths, these_rows = _report_network(recs, name, output_dir, null, net, null_measures)
        prefix = '' if len(by_network) == 1 else name + ' '
        paths.update({prefix + kind: path for kind, path in these_paths.items()})
        rows += [dict(row, network=name) for row in these_rows]
    return paths, rows


def _report_network(records, name, output_dir, null, network, null_measures=None):
    if network is not None:
        layer_order = list(network.metamer_layers)
        logits = network.logits_stage
    else:
        ordered = sorted(records, key=lambda r: r['layer_index'])
        layer_order = list(dict.fromkeys(r['layer'] for r in ordered))
        logits = 'logits' if any('logits' in r['rho'] for r in records) else None
    extra = [r['layer'] for r in records if r['layer'] not in layer_order]
    layer_order += list(dict.fromkeys(extra))
    measured = list(dict.fromkeys(m for r in records for m in r['rho']))
    rows = layer_table(records, layer_order, null, logits_name=logits or measured[-1],
                       null_measures=null_measures)
    paths = {'csv': os.path.join(output_dir, name + '_table.csv'),
             'markdown': os.path.join(output_dir, name + '_table.md')}
    write_text(paths['csv'], table_csv(rows))
    write_text(paths['markdown'], table_markdown(rows, title=name))
    try:
        paths['histograms'] = os.path.join(output_dir, name + '_histograms.png')
        histogram_grid(records, layer_order, measured, null, paths['histograms'], title=name)
    except ImportError:
        del paths['histograms']
    return paths, rows


def main(argv):
    from absl import flags
    FLAGS = flags.FLAGS
    if FLAGS.human:
        from model_metamers import human_results
        status = human_results.main(FLAGS)
        if status or not FLAGS.results_dir:
            return status
    elif not FLAGS.results_dir:
        print('error: give --results_dir=<output_dir>/<network> (validation report) or --human=<folder of '
              'result CSVs> (human experiment report)', file=sys.stderr)
        return 1
    try:
        paths, rows = report(FLAGS.results_dir, FLAGS.output_dir, FLAGS.null_distribution)
    except (ReportError, OSError, ValueError) as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1
    for name in dict.fromkeys(r['network'] for r in rows):
        print(table_markdown([r for r in rows if r['network'] == name], title=name))
    for kind, path in paths.items():
        print('%s: %s' % (kind, path))
    return 0


def _define_flags():
    from absl import flags
    flags.DEFINE_string('results_dir', None, 'folder <output_dir>/<network> of run_generation.py')
    flags.DEFINE_string('null_distribution', None, 'null distribution HDF5 (recomputes pass/fail)')
    flags.DEFINE_string('output_dir', 'reports', 'where to write the table and figure')
    flags.DEFINE_string('human', None, 'folder of the web experiment\'s result CSVs: human-vs-network report')
    flags.DEFINE_float('catch_threshold', 0.75, '--human: exclude participants with a lower share of '
                       'correct catch trials')
    flags.DEFINE_float('headphone_threshold', 0.0, '--human: exclude participants with a lower share of '
                       'correct headphone checks')
    flags.DEFINE_integer('n_boot', 10000, '--human: bootstrap resamples of participants for the 95% intervals')


if __name__ == '__main__':
    from model_metamers import cli
    cli.run(main, _define_flags)
