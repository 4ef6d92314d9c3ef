"""The companion tools check what they are given (issue 26): nulls, reports, transfer, export, figures."""

import csv
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io.wavfile

from model_metamers import export_experiment, null_distribution, plotting, reports, results, transfer
from model_metamers.generation import GenerationError, GenerationSettings, generate
from tests import toy_networks
from tests.conftest import REPO


@pytest.fixture(scope='module')
def net():
    return toy_networks.build_toy_audio()


@pytest.fixture(scope='module')
def sounds(tmp_path_factory):
    return toy_networks.write_toy_sounds(tmp_path_factory.mktemp('sounds'), 2, 1, 'clip')


_settings = toy_networks.toy_settings


@pytest.fixture(scope='module')
def results_dir(tmp_path_factory, net, sounds):
    out = tmp_path_factory.mktemp('out')
    generate(_settings(out, sounds), network=net)
    return str(out / 'toy_audio')


def _copy_results(src, dst, network=None, natural_class_name=None):
    """A copy of a results folder's result files, optionally relabelled as another network's."""
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if name.endswith('.h5'):
            shutil.copy(os.path.join(src, name), os.path.join(dst, name))
            with h5py.File(os.path.join(dst, name), 'a') as f:
                if network:
                    f.attrs['network'] = network
                for layer in f:
                    if natural_class_name:
                        f[layer].attrs['natural_class_name'] = natural_class_name
    return dst


def _null(path, network='toy_audio', weights_sha1='random', layers=('relu1', 'relu2', 'logits')):
    data = {layer: {'spearman': np.array([0.1, 0.2]), 'pearson': np.zeros(2), 'snr_db': np.zeros(2),
                    'pairs': np.array([[0, 1], [1, 0]]), 'n_features': 5} for layer in layers}
    attrs = {'weights': 'somewhere.weights.h5'}
    if network:
        attrs['network'] = network
    if weights_sha1:
        attrs['weights_sha1'] = weights_sha1
    null_distribution.write_null(str(path), data, attrs)
    return str(path)


# ------------------------------------------------------------------ 1: null provenance
def test_generation_refuses_a_null_made_for_another_network(tmp_path, net, sounds):
    other = _null(tmp_path / 'kws_null.h5', network='kws_1d_grouped')
    with pytest.raises(GenerationError, match='computed for network kws_1d_grouped, not toy_audio; '
                                              'compute a null for toy_audio'):
        generate(_settings(tmp_path / 'a', sounds[:1], null_distribution=other), network=net)
    assert not (tmp_path / 'a').exists()
    retrained = _null(tmp_path / 'retrained.h5', weights_sha1='0123456789abcdef')
    with pytest.raises(GenerationError, match='computed with other weights of toy_audio'):
        generate(_settings(tmp_path / 'b', sounds[:1], null_distribution=retrained), network=net)
    # The right network and weights (random: fingerprint 'random') are accepted.
    good = _null(tmp_path / 'good.h5')
    generate(_settings(tmp_path / 'c', sounds[:1], layers=['relu1'], iterations=2,
                       null_distribution=good), network=net)
    saved = results.read_result(str(tmp_path / 'c' / 'toy_audio' / 'clip0.h5'))
    assert saved['relu1']['attrs']['null_max'] == pytest.approx(0.2)


def test_check_matches_accepts_a_null_that_records_no_network(tmp_path):
    null_distribution.check_matches({}, 'word_aliased', 'abc')
    # A published null (a pickle, no network inside) mapped to its network by its file name.
    null_distribution.check_matches({'network': 'word_aliased'}, 'word_aliased', 'abc')
    pickle_path = tmp_path / 'word_aliased_null.pckl'
    pickle_path.write_bytes(b'\x80\x04N.')
    assert null_distribution.read_info(str(pickle_path)) == {}
    null_distribution.check_matches(str(pickle_path), 'word_aliased', 'abc')
    no_network = _null(tmp_path / 'old.h5', network=None, weights_sha1=None)
    null_distribution.check_matches(no_network, 'toy_audio', 'abc')
    with pytest.raises(null_distribution.NullMismatchError, match='for network word_aliased, not kws_2d'):
        null_distribution.check_matches({'network': 'word_aliased'}, 'kws_2d')


def test_reports_refuse_a_null_made_for_another_network(results_dir, tmp_path):
    other = _null(tmp_path / 'kws_null.h5', network='kws_1d_grouped')
    with pytest.raises(null_distribution.NullMismatchError, match='kws_1d_grouped, not toy_audio'):
        reports.report(results_dir, str(tmp_path / 'rep'), other)
    assert not (tmp_path / 'rep').exists()
    paths, rows = reports.report(results_dir, str(tmp_path / 'rep'), _null(tmp_path / 'good.h5'))
    assert rows[0]['max_null_rho'] == pytest.approx(0.2)


# --------------------------------------------------------------- 3: one table per network
def test_reports_make_one_table_per_network(results_dir, tmp_path):
    mixed = str(tmp_path / 'mixed')
    _copy_results(results_dir, mixed)
    for name in os.listdir(results_dir):
        if name.endswith('.h5'):
            shutil.copy(os.path.join(results_dir, name), os.path.join(mixed, 'other_' + name))
            with h5py.File(os.path.join(mixed, 'other_' + name), 'a') as f:
                f.attrs['network'] = 'toy_other'
    paths, rows = reports.report(mixed, str(tmp_path / 'rep'))
    assert {r['network'] for r in rows} == {'toy_audio', 'toy_other'}
    for network in ('toy_audio', 'toy_other'):
        with open(paths['%s csv' % network]) as f:
            table = list(csv.DictReader(f))
        assert os.path.basename(paths['%s csv' % network]) == network + '_table.csv'
        assert [int(t['generated']) for t in table] == [2, 2]  # 2 inputs each, not 4 pooled
        assert os.path.exists(paths['%s histograms' % network])


# ------------------------------------------------------- 4: stray .h5 in a results folder
def test_a_null_file_among_the_results_is_skipped_with_a_note(results_dir, tmp_path, capsys):
    folder = _copy_results(results_dir, str(tmp_path / 'res'))
    _null(os.path.join(folder, 'null.h5'))
    run = subprocess.run([sys.executable, '-m', 'model_metamers.reports', '--results_dir=%s' % folder,
                          '--output_dir=%s' % (tmp_path / 'rep')], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0 and 'Traceback' not in run.stderr, run.stderr[-2000:]
    assert 'note: skipping %s: a null distribution' % os.path.join(folder, 'null.h5') in run.stderr
    (tmp_path / 'res' / 'broken.h5').write_bytes(b'not hdf5')
    capsys.readouterr()
    records = reports.collect(folder)
    assert len(records) == 4 and not any(r['input'] in ('null', 'broken') for r in records)
    assert len(transfer.load_metamers(folder)) == 4
    assert len(export_experiment.gather([folder])) == 4
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 6 and all(n.startswith('note: skipping ') for n in notes)
    assert sum('broken.h5: not a readable HDF5 file' in n for n in notes) == 3


# ------------------------------------------------------------------------ 5: labels
def test_one_labels_rule_for_transfer_and_export(results_dir, net, tmp_path):
    metamers = transfer.load_metamers(results_dir)
    unknown = {'clip0': 'w1', 'clip1': 'banana'}
    with pytest.raises(transfer.TransferError, match="input 'clip1' the label 'banana', which is not a "
                                                     'class of toy_audio'):
        transfer.transfer(metamers, net, labels=unknown, n_boot=10)
    with pytest.raises(export_experiment.ExportError, match="the label 'banana', which is not a class"):
        export_experiment.export([results_dir], str(tmp_path / 'exp'), labels=unknown)
    missing = {'clip0': 'w1'}
    no_label = "no label for input 'clip1' in the labels file; add a row"
    with pytest.raises(transfer.TransferError, match=no_label):
        transfer.transfer(metamers, net, labels=missing, n_boot=10)
    with pytest.raises(export_experiment.ExportError, match=no_label):
        export_experiment.export([results_dir], str(tmp_path / 'exp'), labels=missing)
    assert not (tmp_path / 'exp').exists()
    good = {'clip0': 'w1', 'clip1': 'w2'}
    rows = export_experiment.export([results_dir], str(tmp_path / 'exp'), labels=good)
    assert {(r['input'], r['correct_answer']) for r in rows} == {('clip0', 'w1'), ('clip1', 'w2')}
    assert all(r['n'] == 2 for r in transfer.transfer(metamers, net, labels=good, n_boot=10))


def test_a_1000_way_label_counts_as_its_16_way_category():
    from model_metamers import resources

    class Classifier:
        name = 'slim_like'
        class_names = ['background'] + list(resources.imagenet_classes())
        info = {'logit_offset': 1}

    assert transfer._answer_16(Classifier, 'airliner') == 'airplane'
    assert transfer._answer_16(Classifier, 'bear') == 'bear'
    assert transfer._answer_16(Classifier, 'tench, Tinca tinca') is None  # in none of the 16
    assert transfer.chance_level(Classifier, 'imagenet16') == pytest.approx(1 / 16)


# ------------------------------------------------------------------------ 6: export folder
def test_export_refuses_a_non_empty_folder_unless_overwrite(results_dir, tmp_path):
    exp = tmp_path / 'exp'
    export_experiment.export([results_dir], str(exp))
    assert (exp / 'toy_audio__relu1').is_dir()
    (exp / 'my_notes.txt').write_text('kept')
    with pytest.raises(export_experiment.ExportError, match='is not empty .*pass --overwrite'):
        export_experiment.export([results_dir], str(exp))
    other = _copy_results(results_dir, str(tmp_path / 'other' / 'toy_other'), network='toy_other')
    rows = export_experiment.export([other], str(exp), overwrite=True)
    assert sorted(os.listdir(exp)) == ['export_info.json', 'my_notes.txt', 'natural', 'toy_other__logits',
                                       'toy_other__relu1', 'trials.csv']
    assert len(rows) == 4
    # --overwrite replaces only an earlier export, never a folder of other files.
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'thesis.tex').write_text('x')
    with pytest.raises(export_experiment.ExportError, match='not an earlier export'):
        export_experiment.export([results_dir], str(foreign), overwrite=True)
    assert os.listdir(foreign) == ['thesis.tex']
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    with pytest.raises(export_experiment.ExportError, match='is a file, not a folder') as info:
        export_experiment.export([results_dir], str(a_file))
    assert 'Errno' not in str(info.value)


def test_export_warns_when_networks_disagree_on_the_correct_answer(results_dir, tmp_path, capsys):
    other = _copy_results(results_dir, str(tmp_path / 'other' / 'toy_other'), network='toy_other',
                          natural_class_name='other_word')
    same = _copy_results(results_dir, str(tmp_path / 'same' / 'toy_same'), network='toy_same')
    export_experiment.export([results_dir, same], str(tmp_path / 'exp1'))
    assert not capsys.readouterr().err
    export_experiment.export([results_dir, other], str(tmp_path / 'exp2'))
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 2 and all('different correct answers' in n and '--labels' in n for n in notes)


# ------------------------------------------------------------------------ 10: figures
def _capture(monkeypatch, module):
    figures = []
    monkeypatch.setattr(module, 'save_figure', lambda fig, path, **kw: figures.append(fig))
    return figures


def _texts(fig):
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend:
            out += [t.get_text() for t in legend.get_texts()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    return out


def test_report_histograms_say_what_the_colours_are(results_dir, tmp_path, monkeypatch):
    figures = _capture(monkeypatch, reports)
    reports.report(results_dir, str(tmp_path / 'a'), _null(tmp_path / 'null.h5'))
    reports.report(results_dir, str(tmp_path / 'b'))
    with_null, without = figures
    texts = ' | '.join(_texts(with_null))
    assert 'metamers vs their natural stimuli' in texts and 'null maximum' in texts
    dashed = [line for ax in with_null.axes for line in ax.get_lines() if line.get_linestyle() == '--']
    assert dashed and all(line.get_xdata()[0] == pytest.approx(0.2) for line in dashed)
    texts = ' | '.join(_texts(without))
    assert 'grey' not in texts and 'null' not in texts.replace('no null distribution given', '')
    assert 'metamers vs their natural stimuli' in texts


def test_transfer_plot_has_a_title_sem_and_chance(results_dir, net, tmp_path, monkeypatch):
    figures = _capture(monkeypatch, transfer)
    rows = transfer.transfer(transfer.load_metamers(results_dir), net, n_boot=10, generator_name='toy_audio')
    assert all(r['chance'] == pytest.approx(1 / 5) for r in rows)
    transfer.plot(rows, str(tmp_path / 't.png'))
    ax = figures[0].axes[0]
    assert 'toy_audio' in ax.get_title() and 'SEM' in ax.get_ylabel()
    chance = [line for line in ax.get_lines() if line.get_linestyle() == ':']
    assert chance and chance[0].get_ydata()[0] == pytest.approx(0.2)


def test_result_figure_has_time_and_frequency_axes_on_cochleagrams(tmp_path, monkeypatch):
    from model_metamers import networks
    kws = networks.build('kws_2d', weights='random')
    wave = tmp_path / 'in' / 'clip.wav'
    wave.parent.mkdir()
    scipy.io.wavfile.write(wave, 16000, (np.random.RandomState(0).randn(16000) * 0.1).astype(np.float32))
    generate(GenerationSettings(network='kws_2d', weights='random', inputs=[str(wave)], layers=['conv_0'],
                                iterations=2, log_every=1, output_dir=str(tmp_path / 'out'),
                                progress=False, figures=False), network=kws)
    figures = _capture(monkeypatch, plotting)
    plotting.result_figure(kws, str(tmp_path / 'out' / 'kws_2d' / 'clip.h5'), str(tmp_path / 'f.png'))
    panels = figures[0].axes[:2]
    assert [ax.get_xlabel() for ax in panels] == ['time (s)', 'time (s)']
    assert panels[0].get_ylabel() == 'frequency (Hz)'
    assert panels[0].get_xlim()[1] == pytest.approx(1.0, abs=0.02)  # 1 s of kws audio
    freqs = [float(t.get_text()) for t in panels[0].get_yticklabels()]
    assert freqs[0] < 100 and freqs[-1] > 7000


# ------------------------------------------------------------------------ 9: help text
@pytest.mark.parametrize('module', [null_distribution, reports, transfer, export_experiment])
def test_usage_blocks_have_no_runs_of_spaces(module):
    import re
    usage = module.__doc__.split('Usage')[1].split('\n\n')[1]
    assert not [line for line in usage.splitlines() if re.search(r'\S {3,}\S', line)], usage


def test_convert_checkpoint_help_names_the_default_output():
    run = subprocess.run([sys.executable, '-m', 'model_metamers.convert_checkpoint', '--helpfull'],
                         cwd=REPO, capture_output=True, text=True)
    text = ' '.join(run.stdout.split())
    assert 'checkpoints/<network>.weights.h5' in text and '$MODEL_METAMERS_CHECKPOINT_DIR' in text


def test_export_info_records_the_sample_rate(results_dir, tmp_path):
    export_experiment.export([results_dir], str(tmp_path / 'exp'))
    info = json.load(open(tmp_path / 'exp' / 'export_info.json'))
    assert info['sample_rate'] == 2000 and 'trials.csv' in info['written']
    rate, _ = scipy.io.wavfile.read(tmp_path / 'exp' / 'natural' / 'clip0.wav')
    assert rate == 2000


def test_results_folder_reader_keeps_results(results_dir):
    found = results.read_results_folder(results_dir, note=lambda m: pytest.fail(m))
    assert [os.path.basename(p) for p, _ in found] == ['clip0.h5', 'clip1.h5']
