"""The human report's numbers on made-up participants, the headphone check's tones, bad inputs (no browser)."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io.wavfile
from scipy import stats

from model_metamers import experiment_html, human_results
from model_metamers.export_experiment import ExportError
from tests.conftest import REPO


def _write(folder, participant, answers, catch, seed=1):
    """One participant's results file. ``answers``: {(layer, stimulus index): correct 0/1}."""
    rows = []
    for (layer, k), ok in answers.items():
        rows.append({'kind': 'main', 'condition': 'natural' if layer == 'natural' else 'net__' + layer,
                     'network': '' if layer == 'natural' else 'net', 'layer': layer,
                     'layer_index': -1 if layer == 'natural' else {'a': 0, 'b': 1}[layer],
                     'stimulus': '%s/s%d.wav' % (layer, k), 'input': 's%d' % k, 'correct_answer': 'w%d' % k,
                     'response': 'w%d' % k if ok else 'wrong', 'correct': ok, 'catch': 0,
                     'network_answer': 'w%d' % k if (layer, k) in (('a', 0), ('b', 0), ('b', 1)) else 'x',
                     'network_natural_answer': '' if layer == 'natural' else ('w0' if k == 0 else 'x')})
    for ok in catch:
        rows.append({'kind': 'catch', 'condition': 'catch', 'network': '', 'layer': '', 'layer_index': '',
                     'stimulus': 'natural/s0.wav', 'input': 's0', 'correct_answer': 'w0', 'response': 'w0' if ok else 'no',
                     'correct': ok, 'catch': 1, 'network_answer': ''})
    with open(os.path.join(folder, participant + '.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=experiment_html.RESULT_COLUMNS)
        writer.writeheader()
        for k, r in enumerate(rows):
            writer.writerow(dict(r, participant=participant, seed=seed, trial=k + 1, rt_ms=900, practice=0,
                                 n_choices=4))


# Proportions correct per participant (natural, a, b), 2 stimuli per condition.
PEOPLE = {'p1': (1.0, 0.5, 0.0), 'p2': (1.0, 1.0, 0.5), 'p3': (0.5, 0.0, 0.0), 'p4': (1.0, 0.5, 0.5)}


@pytest.fixture
def folder(tmp_path):
    for who, props in PEOPLE.items():
        answers = {(layer, k): int(k < round(p * 2)) for layer, p in zip(('natural', 'a', 'b'), props)
                   for k in range(2)}
        _write(str(tmp_path), who, answers, catch=[1, 1, 1, 1])
    _write(str(tmp_path), 'careless', {(layer, k): 1 for layer in ('natural', 'a', 'b') for k in range(2)},
           catch=[1, 0, 0, 1])
    return tmp_path


def test_exclusion_means_intervals_and_paired_statistics(folder, tmp_path):
    paths, people, tables = human_results.report(str(folder), str(tmp_path / 'out'), catch_threshold=0.75,
                                                 n_boot=2000)
    assert {p['participant']: p['included'] for p in people} == dict(p1=True, p2=True, p3=True, p4=True,
                                                                     careless=False)
    assert [p['reason'] for p in people if not p['included']] == ['catch 2/4 < 0.75']
    table = {r['layer']: r for r in tables['net']}
    assert list(table) == ['natural', 'a', 'b']  # the network's layer order, natural first
    props = np.array(list(PEOPLE.values()))
    for j, layer in enumerate(('natural', 'a', 'b')):
        r = table[layer]
        assert r['human_prop_correct'] == pytest.approx(props[:, j].mean())  # careless left out
        assert r['n_participants'] == 4 and r['n_trials'] == 8 and r['chance'] == 0.25
        assert min(props[:, j]) <= r['human_ci_low'] <= r['human_prop_correct'] <= r['human_ci_high'] <= max(props[:, j])
        if layer != 'natural':
            diff = props[:, j] - props[:, 0]
            assert r['mean_diff_vs_natural'] == pytest.approx(diff.mean())
            assert r['t_vs_natural'] == pytest.approx(stats.ttest_rel(props[:, j], props[:, 0]).statistic)
            assert r['p_t_vs_natural'] == pytest.approx(stats.ttest_rel(props[:, j], props[:, 0]).pvalue)
    assert table['a']['network_prop_correct'] == 0.5 and table['b']['network_prop_correct'] == 1.0
    assert table['natural']['network_prop_correct'] == 0.5 and table['natural']['network_n_stimuli'] == 2
    # the interval is the bootstrap's: wider than nothing, inside the range of the four participants
    assert table['a']['human_ci_high'] - table['a']['human_ci_low'] > 0.2
    with open(paths['net_csv']) as f:
        assert [r['layer'] for r in csv.DictReader(f)] == ['natural', 'a', 'b']
    for key in ('net_png', 'net_svg'):
        assert os.path.getsize(paths[key]) > 5000
    with open(paths['net_svg']) as f:
        assert f.read(200).lstrip().startswith('<?xml')


def test_sign_flip_test_is_exact():
    assert human_results.signflip_p([0.5, 0.5, 0.5]) == pytest.approx(2 / 8)
    assert human_results.signflip_p([0.5, -0.5]) == pytest.approx(1.0)
    assert human_results.bootstrap_ci([0.3, 0.3, 0.3]) == (pytest.approx(0.3), pytest.approx(0.3))


def test_bad_human_folders_give_one_line_errors(tmp_path, folder):
    with pytest.raises(human_results.HumanResultsError, match='--human folder .*out does not exist'):
        human_results.read_results(str(tmp_path / 'out'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(human_results.HumanResultsError, match=r'no result files \(\*.csv\)'):
        human_results.read_results(str(empty))
    (empty / 'other.csv').write_text('a,b\n1,2\n')
    with pytest.raises(human_results.HumanResultsError, match='other.csv is not a results file of the web'):
        human_results.read_results(str(empty))
    with open(folder / 'p1.csv') as f:
        (folder / 'p1_again.csv').write_text(f.read())
    with pytest.raises(human_results.HumanResultsError, match='participant p1 is in both'):
        human_results.read_results(str(folder))
    row = dict.fromkeys(experiment_html.RESULT_COLUMNS, '0')
    (folder / 'p1_again.csv').write_text(','.join(row) + '\n' + ','.join(dict(row, participant='p5',
                                                                               correct='yes').values()) + '\n')
    with pytest.raises(human_results.HumanResultsError, match='p1_again.csv line 2: correct, catch, practice'):
        human_results.read_results(str(folder))
    os.remove(folder / 'p1_again.csv')
    with pytest.raises(human_results.HumanResultsError, match='--catch_threshold and --headphone_threshold are'):
        human_results.report(str(folder), str(tmp_path / 'o'), catch_threshold=75)
    only_careless = tmp_path / 'careless'
    only_careless.mkdir()
    os.rename(folder / 'careless.csv', only_careless / 'careless.csv')
    with pytest.raises(human_results.HumanResultsError, match='every participant is excluded'):
        human_results.report(str(only_careless), str(tmp_path / 'o'))
    run = subprocess.run([sys.executable, '-m', 'model_metamers.reports', '--human=%s' % empty,
                          '--output_dir=%s' % (tmp_path / 'o')], capture_output=True, text=True, cwd=REPO, check=False)
    assert run.returncode == 1 and run.stderr.count('\n') == 1 and 'not a results file' in run.stderr
    run = subprocess.run([sys.executable, '-m', 'model_metamers.reports'], capture_output=True, text=True, cwd=REPO, check=False)
    assert run.returncode == 1 and 'give --results_dir=' in run.stderr and run.stderr.count('\n') == 1
    assert not os.path.exists(tmp_path / 'o')  # nothing half-written


def test_headphone_check_tones(tmp_path):
    items = experiment_html._write_headphone_checks(str(tmp_path), 6, seed=2)
    assert len({i['answer'] for i in items}) > 1  # the quiet tone moves about
    for item in items:
        rate, data = scipy.io.wavfile.read(str(tmp_path / item['file']))
        assert rate == experiment_html.HEADPHONE_RATE and data.shape[1] == 2
        x = data.astype(np.float64) / 32767
        tone, gap = int(0.5 * rate), int(0.3 * rate)
        parts = [x[gap + k * (tone + gap): gap + k * (tone + gap) + tone] for k in range(3)]
        ear = [np.sqrt(np.mean(p ** 2)) for p in parts]  # level in each ear (headphones)
        speakers = [np.sqrt(np.mean(p.sum(1) ** 2)) for p in parts]  # both channels summed in the air
        quiet = item['answer'] - 1
        assert int(np.argmin(ear)) == quiet
        assert ear[quiet] == pytest.approx(max(ear) / 2, rel=0.01)  # 6 dB down
        assert min(speakers) < 0.01 * max(speakers) and int(np.argmin(speakers)) != quiet  # the antiphase tone


def test_bad_experiment_settings_are_refused(tmp_path):
    items = [{'input': 'a', 'answer': 'yes'}]
    for kwargs, message in [(dict(catch_rate=1.0), '--catch_rate must be at least 0 and below 1'),
                            (dict(practice=-1), '--practice and --headphone_checks must be 0 or more'),
                            (dict(post_url='ftp://x'), '--post_url must be an http'),
                            ]:
        with pytest.raises(ExportError, match=message):
            experiment_html.check(items, 'audio', **kwargs)
    with pytest.raises(ExportError, match='no correct answer for input'):
        experiment_html.check([{'input': 'a', 'answer': ''}], 'audio')
    with pytest.raises(ExportError, match='none of the 16 categories'):
        experiment_html.check([{'input': 'a', 'answer': 'zebra crossing'}], 'image')
    experiment_html.check([{'input': 'a', 'answer': 'airliner'}], 'image')  # an ImageNet class of 'airplane'
    assert experiment_html.image_category('airliner') == 'airplane'
    assert len(experiment_html.word_choices()) == 793


def test_bad_html_flags_are_one_line_errors_and_write_nothing(tmp_path):
    from tests.web_experiment_flow import image_results

    image_results(tmp_path / 'toy_image')
    for flag, message in [('--catch_rate=1.5', '--catch_rate must be at least 0 and below 1'),
                          ('--post_url=ftp://x', '--post_url must be an http')]:
        run = subprocess.run([sys.executable, '-m', 'model_metamers.export_experiment',
                              '--results_dir=%s' % (tmp_path / 'toy_image'), '--output_dir=%s' % (tmp_path / 'exp'),
                              '--html', flag], capture_output=True, text=True, cwd=REPO, check=False)
        assert run.returncode == 1 and run.stderr.startswith('error: ' + message), run.stderr
        assert run.stderr.count('\n') == 1
        assert not os.path.exists(tmp_path / 'exp')


def test_overwrite_removes_the_web_experiment_too(tmp_path):
    from model_metamers import export_experiment
    from tests.web_experiment_flow import image_results

    image_results(tmp_path / 'toy_image')
    out = tmp_path / 'exp'
    export_experiment.export([str(tmp_path / 'toy_image')], str(out), html={'practice': 1})
    assert {'index.html', 'experiment_data.js', 'experiment.js', 'experiment.css'} <= set(os.listdir(out))
    export_experiment.export([str(tmp_path / 'toy_image')], str(out), overwrite=True)
    assert not {'index.html', 'experiment_data.js', 'experiment.js', 'experiment.css'} & set(os.listdir(out))
    assert 'trials.csv' in os.listdir(out)
