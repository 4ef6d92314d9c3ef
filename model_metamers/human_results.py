"""Human recognition of metamers from the web experiment's result files (``reports --human=<folder>``).

Reads every ``*.csv`` a participant's page wrote (columns of
:data:`model_metamers.experiment_html.RESULT_COLUMNS`), excludes participants whose share of correct
catch trials (or headphone checks) is below a threshold, and per network writes, like Fig. 2/3 of the
paper: human proportion correct per condition (natural, then each metamer layer) with a bootstrapped
95 % interval over participants, the network's own recognition of the same metamers, the chance level,
and a within-subject comparison of each layer with the natural condition (paired t-test and exact
sign-flip test on the per-participant proportions).
"""

import csv
import glob
import io
import itertools
import os

import numpy as np

from model_metamers.errors import UserError
from model_metamers.fileio import atomic_path, save_figure, write_text

NATURAL = 'natural'
REQUIRED = ('participant', 'seed', 'kind', 'condition', 'network', 'layer', 'stimulus', 'response',
            'correct_answer', 'correct', 'catch', 'practice', 'network_answer', 'layer_index', 'n_choices')
TABLE_COLUMNS = ['network', 'condition', 'layer', 'n_participants', 'n_trials', 'human_prop_correct',
                 'human_ci_low', 'human_ci_high', 'network_prop_correct', 'network_n_stimuli', 'chance',
                 'n_paired', 'mean_diff_vs_natural', 't_vs_natural', 'p_t_vs_natural', 'p_signflip_vs_natural']
PARTICIPANT_COLUMNS = ['participant', 'seed', 'file', 'catch_correct', 'catch_trials', 'headphone_correct',
                       'headphone_trials', 'main_trials', 'included', 'reason']


class HumanResultsError(UserError, ValueError):
    """No result files, or files that are not the experiment's results."""


def read_results(folder):
    """Rows of every result CSV in ``folder`` (dicts; ``correct``/``catch``/``practice`` as ints)."""
    if not os.path.isdir(folder):
        raise HumanResultsError('--human folder %s does not exist; give the folder holding the '
                                "participants' results CSVs" % folder)
    files = sorted(glob.glob(os.path.join(folder, '*.csv')))
    if not files:
        raise HumanResultsError('no result files (*.csv) in %s; put the files the experiment page '
                                'downloaded or POSTed there' % folder)
    rows, owner = [], {}
    for path in files:
        with open(path, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise HumanResultsError('%s is not a results file of the web experiment (no column %s)'
                                        % (path, ', '.join(missing)))
            for row in reader:
                who = row['participant']
                if owner.setdefault(who, path) != path:
                    raise HumanResultsError('participant %s is in both %s and %s; keep one file per '
                                            'participant' % (who, owner[who], path))
                try:
                    for key in ('correct', 'catch', 'practice'):
                        row[key] = int(row[key])
                    row['layer_index'] = int(row['layer_index']) if row['layer_index'] not in ('', None) else 0
                except (TypeError, ValueError):
                    raise HumanResultsError('%s line %d: correct, catch, practice and layer_index must be '
                                            'whole numbers; was the file edited?' % (path, reader.line_num)) from None
                row['file'] = os.path.basename(path)
                rows.append(row)
    if not rows:
        raise HumanResultsError('the result files in %s hold no trials' % folder)
    return rows


def participants(rows, catch_threshold=0.75, headphone_threshold=0.0):
    """One summary dict per participant (``PARTICIPANT_COLUMNS``) with the exclusion decision."""
    out = []
    for who in dict.fromkeys(r['participant'] for r in rows):
        mine = [r for r in rows if r['participant'] == who]
        catch = [r['correct'] for r in mine if r['catch']]
        phones = [r['correct'] for r in mine if r['kind'] == 'headphone']
        reasons = []
        if catch and np.mean(catch) < catch_threshold:
            reasons.append('catch %d/%d < %g' % (sum(catch), len(catch), catch_threshold))
        if phones and np.mean(phones) < headphone_threshold:
            reasons.append('headphone check %d/%d < %g' % (sum(phones), len(phones), headphone_threshold))
        out.append({'participant': who, 'seed': mine[0]['seed'], 'file': mine[0]['file'],
                    'catch_correct': int(sum(catch)), 'catch_trials': len(catch),
                    'headphone_correct': int(sum(phones)), 'headphone_trials': len(phones),
                    'main_trials': sum(1 for r in mine if r['kind'] == 'main'),
                    'included': not reasons, 'reason': '; '.join(reasons)})
    return out


def bootstrap_ci(values, n_boot=10000, seed=0, level=0.95):
    """Percentile interval of the mean of ``values`` resampled with replacement ``(low, high)``."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def signflip_p(differences, n_random=20000, seed=0):
    """Two-sided p of the mean paired difference under random sign flips (exact up to 16 pairs)."""
    d = np.asarray(differences, np.float64)
    if d.size == 0:
        return np.nan
    observed = abs(d.mean())
    if d.size <= 16:
        signs = np.array(list(itertools.product((1, -1), repeat=d.size)), np.float64)
    else:
        signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(n_random, d.size))
    return float(np.mean(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12))


def _paired_t(differences):
    d = np.asarray(differences, np.float64)
    if d.size < 2 or np.std(d) == 0:
        return np.nan, np.nan
    from scipy import stats
    res = stats.ttest_1samp(d, 0.0)
    return float(res.statistic), float(res.pvalue)


def _scores(rows, network, layer):
    """``{participant: proportion correct}`` in one condition of the main trials."""
    key = (lambda r: r['layer'] == NATURAL) if layer == NATURAL else \
          (lambda r: r['network'] == network and r['layer'] == layer)
    by = {}
    for r in rows:
        if r['kind'] == 'main' and key(r):
            by.setdefault(r['participant'], []).append(r['correct'])
    return {p: float(np.mean(v)) for p, v in by.items()}, sum(len(v) for v in by.values())


def summarise(rows, n_boot=10000, seed=0):
    """``{network: [row per condition (TABLE_COLUMNS)]}`` from the included participants' rows."""
    main = [r for r in rows if r['kind'] == 'main']
    networks = sorted({r['network'] for r in main if r['network']})
    if not networks:
        raise HumanResultsError('the result files have no metamer trials to analyse')
    choices = {int(r['n_choices']) for r in main if r['n_choices']}
    chance = 1.0 / max(choices) if choices else np.nan
    tables = {}
    for network in networks:
        mine = [r for r in main if r['network'] == network]
        layers = sorted({(r['layer_index'], r['layer']) for r in mine})
        natural, _ = _scores(main, network, NATURAL)
        table = []
        for layer in [NATURAL] + [name for _, name in layers]:
            scores, n_trials = _scores(main, network, layer)
            low, high = bootstrap_ci(list(scores.values()), n_boot, seed)
            stimuli = {}
            for r in mine:
                if r['layer'] == layer:  # the network's answer per metamer, each metamer once
                    stimuli[r['stimulus']] = r['network_answer'] == r['correct_answer']
                elif layer == NATURAL and r.get('network_natural_answer'):  # per natural, from its metamers
                    stimuli[r['input']] = r['network_natural_answer'] == r['correct_answer']
            paired = [scores[p] - natural[p] for p in scores if p in natural] if layer != NATURAL else []
            t, p_t = _paired_t(paired)
            table.append({'network': network, 'condition': NATURAL if layer == NATURAL else network + '__' + layer,
                          'layer': layer, 'n_participants': len(scores), 'n_trials': n_trials,
                          'human_prop_correct': float(np.mean(list(scores.values()))) if scores else np.nan,
                          'human_ci_low': low, 'human_ci_high': high,
                          'network_prop_correct': float(np.mean(list(stimuli.values()))) if stimuli else np.nan,
                          'network_n_stimuli': len(stimuli), 'chance': chance, 'n_paired': len(paired),
                          'mean_diff_vs_natural': float(np.mean(paired)) if paired else np.nan,
                          't_vs_natural': t, 'p_t_vs_natural': p_t,
                          'p_signflip_vs_natural': signflip_p(paired) if paired else np.nan})
        tables[network] = table
    return tables


def _csv(rows, columns):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction='ignore')
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ('%.10g' % v if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def figure(table, title, png_path, svg_path):
    """The paper's human-vs-network plot for one network: proportion correct per condition."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    x = np.arange(len(table))
    human = np.array([r['human_prop_correct'] for r in table])
    err = np.array([[h - r['human_ci_low'], r['human_ci_high'] - h] for h, r in zip(human, table)]).T
    fig, ax = plt.subplots(figsize=(1.1 * len(table) + 2.5, 3.6))
    ax.errorbar(x, human, yerr=err, color='k', marker='o', capsize=3, label='humans (95% CI)')
    net = np.array([r['network_prop_correct'] for r in table])
    ax.plot(x, net, color='C0', marker='s', label='network (same metamers)')
    ax.axhline(table[0]['chance'], color='0.5', ls='--', lw=1, label='chance')
    ax.set_xticks(x)
    ax.set_xticklabels([r['layer'] for r in table], rotation=30, ha='right')
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel('proportion correct')
    ax.set_title('%s (n = %d participants)' % (title, table[0]['n_participants']))
    ax.legend(fontsize=8, loc='best')
    fig.tight_layout()
    save_figure(fig, png_path, dpi=110)
    with atomic_path(svg_path, '.svg') as tmp:
        fig.savefig(tmp, format='svg')
    plt.close(fig)


def report(folder, output_dir, catch_threshold=0.75, headphone_threshold=0.0, n_boot=10000, seed=0):
    """Write ``participants.csv`` and per network ``<network>_human.csv`` / ``.png`` / ``.svg``.

    Returns ``(paths, participant rows, {network: table rows})``.
    """
    if not 0 <= catch_threshold <= 1 or not 0 <= headphone_threshold <= 1:
        raise HumanResultsError('--catch_threshold and --headphone_threshold are shares from 0 to 1, got %g '
                                'and %g' % (catch_threshold, headphone_threshold))
    if n_boot < 1:
        raise HumanResultsError('--n_boot must be 1 or more, got %d; e.g. --n_boot=10000' % n_boot)
    rows = read_results(folder)
    people = participants(rows, catch_threshold, headphone_threshold)
    kept = {p['participant'] for p in people if p['included']}
    if not kept:
        raise HumanResultsError('every participant is excluded (catch threshold %g); lower '
                                '--catch_threshold to look at them anyway' % catch_threshold)
    tables = summarise([r for r in rows if r['participant'] in kept], n_boot, seed)
    paths = {'participants': os.path.join(output_dir, 'participants.csv')}
    write_text(paths['participants'], _csv(people, PARTICIPANT_COLUMNS))
    for network, table in tables.items():
        paths[network + '_csv'] = os.path.join(output_dir, network + '_human.csv')
        write_text(paths[network + '_csv'], _csv(table, TABLE_COLUMNS))
        try:
            paths[network + '_png'] = os.path.join(output_dir, network + '_human.png')
            paths[network + '_svg'] = os.path.join(output_dir, network + '_human.svg')
            figure(table, network, paths[network + '_png'], paths[network + '_svg'])
        except ImportError:  # matplotlib is optional
            del paths[network + '_png'], paths[network + '_svg']
    return paths, people, tables


def main(flag_values):
    """``reports --human``: write the report, print where and who was excluded; returns the exit status."""
    import sys

    try:
        paths, people, tables = report(flag_values.human, flag_values.output_dir, flag_values.catch_threshold,
                                       flag_values.headphone_threshold, flag_values.n_boot)
    except (HumanResultsError, OSError, ValueError) as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1
    out = [p for p in people if not p['included']]
    print('participants: %d, excluded %d%s' % (len(people), len(out),
                                               ''.join('\n  %s: %s' % (p['participant'], p['reason']) for p in out)))
    for network, table in tables.items():
        print('%s: %s' % (network, ', '.join('%s %.3f' % (r['layer'], r['human_prop_correct']) for r in table)))
    for kind, path in paths.items():
        print('%s: %s' % (kind, path))
    return 0
