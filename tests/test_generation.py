"""Generation runs end to end on a tiny network: files, resume, shards, reports, transfer, export."""

import csv
import glob
import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io.wavfile

from model_metamers import export_experiment, reports, results, transfer
from model_metamers.audio import AudioLoadError
from model_metamers.generation import (GenerationError, GenerationSettings, expand_inputs, generate, plan_jobs,
                                       summary_table)
from tests import toy_networks
from tests.tb_events import tensorboard_events
from tests.conftest import REPO


@pytest.fixture(scope='module')
def net():
    return toy_networks.build_toy_audio()


@pytest.fixture(scope='module')
def sounds(tmp_path_factory):
    return toy_networks.write_toy_sounds(tmp_path_factory.mktemp('sounds'), 3, 0, 'word')


def _settings(out, inputs, **kw):
    base = dict(network='toy_audio', weights='random', inputs=inputs, layers=['relu1', 'logits'],
                iterations=300, learning_rate=0.01, log_every=100, output_dir=str(out),
                progress=False)
    base.update(kw)
    return GenerationSettings(**base)


@pytest.fixture(scope='module')
def generated(tmp_path_factory, net, sounds):
    out = tmp_path_factory.mktemp('out')
    rows = generate(_settings(out, sounds), network=net)
    return out, rows


def test_output_contract(generated, sounds):
    out, rows = generated
    folder = os.path.join(out, 'toy_audio')
    assert len(rows) == 6 and all(not r['skipped'] for r in rows)
    for path in sounds:
        stem = os.path.splitext(os.path.basename(path))[0]
        with h5py.File(os.path.join(folder, stem + '.h5'), 'r') as f:
            assert f.attrs['network'] == 'toy_audio' and f.attrs['input'] == path
            assert set(f) == {'relu1', 'logits'}
            g = f['relu1']
            for name in ('metamer', 'natural', 'loss', 'loss_steps', 'snapshots', 'spearman_all_layers',
                         'spearman_layers', 'grad_norm', 'change_norm', 'learning_rates'):
                assert name in g, name
            for name in ('spearman_matched', 'same_class', 'passed', 'natural_class', 'metamer_class',
                         'learning_rate', 'iterations', 'seed', 'weights', 'package_version'):
                assert name in g.attrs, name
            assert g['metamer'].shape == (4000,) and g.attrs['iterations'] == 300
            np.testing.assert_array_equal(g['loss_steps'][()], [0, 100, 200, 300])
            assert g['snapshots'].shape == (3, 4000)
            assert g.attrs['spearman_matched'] > 0.9
            assert list(g['spearman_layers'][()].astype(str)) == ['relu1', 'relu2', 'logits']
        # Each stimulus' own record: its layer, the layer's place among the network's metamer
        # layers (relu1, relu2, logits: readers order layers by it), its outcome and last loss.
        with h5py.File(os.path.join(folder, stem + '.h5'), 'r') as f:
            for layer, index in (('relu1', 0), ('logits', 2)):
                attrs = f[layer].attrs
                assert (attrs['layer'], attrs['layer_index']) == (layer, index)
                assert attrs['final_loss'] == f[layer]['loss'][-1] and attrs['elapsed_s'] > 0
                assert 'status' in attrs and 'message' in attrs and 'matched_as' in attrs
            # By default a ReLU layer is matched through the modified ReLU (the paper's choice).
            assert 'modified ReLU' in str(f['relu1'].attrs['matched_as'])
        assert os.path.exists(os.path.join(folder, stem + '_relu1.wav'))
        assert os.path.exists(os.path.join(folder, stem + '_natural.wav'))
        assert os.path.exists(os.path.join(folder, stem + '_figure.png'))
    assert not glob.glob(os.path.join(folder, 'parts', '_state', '*', '*.state.h5'))
    assert not glob.glob(os.path.join(folder, '**', '*.tmp'), recursive=True)


def _table_cells(table):
    lines = table.splitlines()
    return [re.split(r'\s{2,}', line.strip()) for line in [lines[0]] + lines[2:]]


def test_the_rows_and_the_table_say_what_the_result_files_hold(tmp_path, net, sounds, generated):
    """generate()'s rows, and the end-of-run table made of them, are the result files' record: the
    same loss, rho, classes and verdict, the null's maximum that was used, the seed's group."""
    null_path = str(tmp_path / 'null.h5')
    with h5py.File(null_path, 'w') as f:
        f.create_dataset('relu1/spearman', data=np.array([0.25, 0.5]))
        f.create_dataset('logits/spearman', data=np.array([0.1, 0.9999999]))
    rows = generate(_settings(tmp_path / 'out', sounds, seed=3, iterations=4, log_every=2,
                              figures=False, null_distribution=null_path), network=net)
    assert [(r['input'], r['layer']) for r in rows] == [(w, layer) for layer in ('relu1', 'logits')
                                                        for w in ('word0', 'word1', 'word2')]
    # a metamer of another class than its sound's, and both verdicts, among them
    assert {r['same_class'] for r in rows} == {True, False} and {r['passed'] for r in rows} == {True, False}
    cells = _table_cells(summary_table(rows))
    assert cells[0] == ['input', 'layer', 'final_loss', 'spearman', 'null_max', 'same_class', 'passed', 'status']
    for row, line in zip(rows, cells[1:]):
        with h5py.File(str(tmp_path / 'out' / 'toy_audio' / (row['input'] + '.h5')), 'r') as f:
            group = f[row['layer'] + '@seed3']
            attrs, loss = dict(group.attrs), group['loss'][()]
            natural, metamer = group['natural'][()], group['metamer'][()]
        null_max = {'relu1': 0.5, 'logits': 0.9999999}[row['layer']]
        assert row['seed'] == 3 and not row['skipped'] and row['note'] == ''
        assert row['loss'] == loss[-1] == attrs['final_loss']
        assert row['spearman'] == attrs['spearman_matched']
        assert row['same_class'] == attrs['same_class'] and row['passed'] == attrs['passed']
        assert row['passed'] == (bool(attrs['same_class']) and attrs['spearman_matched'] > null_max)
        assert row['null_max'] == pytest.approx(null_max) and row['class_only'] is False
        assert row['status'] == attrs['status'] == 'finished'
        assert (row['natural_class'], row['metamer_class']) == (attrs['natural_class_name'],
                                                                attrs['metamer_class_name'])
        # the toy network's classes, in the order of its logits
        names = ['null', 'w1', 'w2', 'w3', 'w4']
        assert row['natural_class'] == names[int(np.argmax(net.logits(natural[None])))]
        assert row['metamer_class'] == names[int(np.argmax(net.logits(metamer[None])))]
        for name in ('pearson', 'null_max_pearson', 'snr_db', 'null_max_snr_db'):
            assert np.isnan(row[name]), name  # the 2023 measures: not computed by the 2019 rule
        assert line == [row['input'], row['layer'] + '@seed3', '%.4g' % loss[-1],
                        '%.4f' % attrs['spearman_matched'], '%.4f' % null_max, str(bool(attrs['same_class'])),
                        str(bool(row['passed'])), 'finished']
    # Without a null only the class was judged: no null maximum, and a pass reads 'class only'.
    _, plain = generated
    for row, line in zip(plain, _table_cells(summary_table(plain))[1:]):
        assert np.isnan(row['null_max']) and row['class_only'] is True
        assert line[4] == '-' and line[6] == ('class only' if row['passed'] else 'False')
    skipped = generate(_settings(tmp_path / 'out', sounds[:1], seed=3, iterations=4, log_every=2, figures=False,
                                 layers=['relu1'], null_distribution=null_path), network=net)
    assert skipped[0]['skipped'] and _table_cells(summary_table(skipped))[1][-1] == 'finished (skipped: done before)'


def test_a_figure_is_drawn_again_only_when_its_result_is_newer(tmp_path, net, sounds, monkeypatch):
    from model_metamers import plotting
    drawn = []

    def draw(network, result_path, out_path):
        drawn.append((os.path.basename(result_path), os.path.basename(out_path)))
        with open(out_path, 'wb') as f:
            f.write(b'figure')

    monkeypatch.setattr(plotting, 'result_figure', draw)
    folder = tmp_path / 'toy_audio'

    def run(**kw):
        del drawn[:]
        said = []
        generate(_settings(tmp_path, sounds[:2], layers=['relu1'], iterations=4, log_every=2, **kw),
                 network=net, log=said.append)
        return said

    run(figures=False)
    assert drawn == [] and not list(folder.glob('*_figure.png'))
    run()  # results there, no figure yet: both drawn
    assert drawn == [('word0.h5', 'word0_figure.png'), ('word1.h5', 'word1_figure.png')]
    run()  # figures newer than their results: none drawn again
    assert drawn == []
    old = os.path.getmtime(folder / 'word1.h5') - 60
    os.utime(folder / 'word1_figure.png', (old, old))  # a figure older than its result
    run()
    assert drawn == [('word1.h5', 'word1_figure.png')]

    def no_matplotlib(*args):
        raise ImportError('No module named matplotlib')

    monkeypatch.setattr(plotting, 'result_figure', no_matplotlib)
    os.remove(folder / 'word0_figure.png')
    assert 'matplotlib is not installed: no figure (pip install model_metamers[plots])' in run()


def test_what_loading_a_network_by_name_reports_is_said(tmp_path, sounds, monkeypatch):
    """A network loaded by name may report checkpoint variables it skipped: the run's log says it."""
    from model_metamers import networks
    real = networks.load

    def load(name, weights, log, **kw):
        network, weights, weights_id = real(name, weights, log, **kw)
        network.info['weights_report'] = 'skipped 2 checkpoint variables: global_step, beta1_power'
        return network, weights, weights_id

    monkeypatch.setattr(networks, 'load', load)
    said = []
    rows = generate(_settings(tmp_path, sounds[:1], layers=['relu1'], iterations=2, log_every=1, figures=False),
                    log=said.append)
    assert len(rows) == 1 and 'skipped 2 checkpoint variables: global_step, beta1_power' in said


def test_rerun_skips_finished_work(generated, net, sounds):
    out, _ = generated
    rows = generate(_settings(out, sounds), network=net)
    assert all(r['skipped'] for r in rows)
    rows = generate(_settings(out, sounds[:1], iterations=200), network=net)
    assert not any(r['skipped'] for r in rows)


def test_a_rerun_with_another_null_validates_again_without_synthesis(tmp_path, net, sounds):
    settings = _settings(tmp_path, sounds[:1], layers=['relu1'], iterations=20, log_every=10,
                         figures=False)
    generate(settings, network=net)
    result = str(tmp_path / 'toy_audio' / 'word0.h5')
    before = results.read_result(result)['relu1']
    assert before['attrs']['criterion'].startswith('same_class (no null')
    null_path = str(tmp_path / 'null.h5')
    with h5py.File(null_path, 'w') as f:
        f.create_dataset('relu1/spearman', data=np.array([0.2, 0.9999999]))
    said = []
    settings.null_distribution = null_path
    rows = generate(settings, network=net, log=said.append)
    assert rows[0]['skipped'] and said == ['word0 / relu1: already done; validated again with %s' % null_path]
    after = results.read_result(result)['relu1']
    assert after['attrs']['criterion'] == 'same_class and spearman > null max'
    assert after['attrs']['null_max'] == pytest.approx(0.9999999)
    assert after['attrs']['passed'] == (bool(before['attrs']['same_class'])
                                        and before['attrs']['spearman_matched'] > 0.9999999)
    assert after['attrs']['spearman_matched'] == pytest.approx(before['attrs']['spearman_matched'])
    np.testing.assert_array_equal(after['datasets']['metamer'], before['datasets']['metamer'])
    said.clear()
    generate(settings, network=net, log=said.append)  # the same null again: nothing to redo
    assert said == ['word0 / relu1: already done, skipped']
    settings.null_distribution = None
    generate(settings, network=net, log=said.append)
    assert results.read_result(result)['relu1']['attrs']['criterion'].startswith('same_class (no null')


def test_a_layer_named_twice_is_done_once(tmp_path, net, sounds):
    rows = generate(_settings(tmp_path, sounds[:1], layers=['relu1', 'relu1'], iterations=10,
                              figures=False), network=net)
    assert [(r['layer'], r['skipped']) for r in rows] == [('relu1', False)]


def test_a_run_killed_before_assembling_is_completed_by_the_rerun(tmp_path, net, sounds, monkeypatch):
    settings = _settings(tmp_path, sounds[:1], iterations=20, log_every=10, figures=False)
    real_assemble = results.assemble

    def killed(*args, **kwargs):
        raise KeyboardInterrupt()

    monkeypatch.setattr(results, 'assemble', killed)
    with pytest.raises(KeyboardInterrupt):
        generate(settings, network=net)
    result = os.path.join(tmp_path, 'toy_audio', 'word0.h5')
    assert not os.path.exists(result)
    # The layer's part and its WAV were written before the kill.
    assert os.path.exists(os.path.join(tmp_path, 'toy_audio', 'word0_relu1.wav'))
    monkeypatch.setattr(results, 'assemble', real_assemble)
    rows = generate(settings, network=net)
    assert [r['skipped'] for r in rows] == [True, False]
    assert set(results.read_result(result)) == {'_file', 'relu1', 'logits'}
    os.remove(result)  # deleted by hand: a rerun that only skips builds it again
    rows = generate(settings, network=net)
    assert all(r['skipped'] for r in rows)
    assert set(results.read_result(result)) == {'_file', 'relu1', 'logits'}


def test_shards_cover_every_job_once_and_merge(tmp_path, net, sounds):
    jobs = [plan_jobs(3, ['a', 'b'], 4, k) for k in range(4)]
    flat = sorted(j for shard in jobs for j in shard)
    assert flat == sorted((i, layer) for i in range(3) for layer in ['a', 'b'])
    for k in range(2):
        generate(_settings(tmp_path, sounds, num_shards=2, shard_index=k, figures=False), network=net)
    folder = tmp_path / 'toy_audio'
    assert not glob.glob(str(folder / '*.h5'))  # shards write parts only
    merged = results.merge(str(folder))
    assert len(merged) == 3
    for path in merged:
        with h5py.File(path, 'r') as f:
            assert set(f) == {'relu1', 'logits'}
    with pytest.raises(GenerationError, match='shard_index'):
        plan_jobs(3, ['a'], 2, 2)
    said = []  # more shards than jobs: the spare ones say so
    rows = generate(_settings(tmp_path / 'spare', sounds[:1], num_shards=5, shard_index=4),
                    network=net, log=said.append)
    assert rows == [] and said[-1:] == ['shard 4 of 5 has no jobs (1 input(s) x 2 layer(s) = 2 jobs '
                                        'in all); nothing to do']
    assert said[:-1] == [line for line in said if line.startswith('no null distribution for toy_audio')]


def test_batched_generation_matches_single(tmp_path, net, sounds, generated):
    out, _ = generated
    generate(_settings(tmp_path, sounds, batch_size=3, figures=False), network=net)
    for path in sounds:
        stem = os.path.splitext(os.path.basename(path))[0]
        a = results.read_result(os.path.join(out, 'toy_audio', stem + '.h5'))
        b = results.read_result(str(tmp_path / 'toy_audio' / (stem + '.h5')))
        # Batch-size-dependent matmul round-off, amplified by Adam's normalisation.
        np.testing.assert_allclose(a['relu1']['datasets']['metamer'], b['relu1']['datasets']['metamer'],
                                   atol=2e-5)


@pytest.mark.parametrize('field,value,message', [
    ('batch_size', 0, '--batch_size must be at least 1'),
    ('iterations', -1, '--iterations must be 0 or more'),
    ('learning_rate', -0.01, '--learning_rate must be a positive number'),
    ('learning_rate', float('nan'), '--learning_rate must be a positive number'),
    ('seed', -1, '--seed must be in 0 .. 2'),
    ('log_every', -5, '--log_every must be 0'),
    ('checkpoint_every', 0, '--checkpoint_every must be at least 1'),
    ('stop_window', 0, '--stop_window must be at least 1'),
    ('stop_threshold', -1.0, '--stop_threshold must be 0 or more'),
    ('stop_window', 150, '--stop_window must be a multiple of --log_every=100'),
    ('num_shards', 0, '--num_shards must be at least 1'),
    ('shard_index', 1, '--shard_index must be in 0 .. 0 for --num_shards=1'),
    ('shard_index', -1, '--shard_index must be in 0 .. 0 for --num_shards=1'),
])
def test_bad_numeric_settings_are_refused_before_anything_is_written(tmp_path, net, sounds, field,
                                                                     value, message):
    out = tmp_path / 'out'
    with pytest.raises(GenerationError, match=message + '.*pass e.g. --'):
        generate(_settings(out, sounds[:1], **{field: value}), network=net)
    assert not out.exists()


def test_unwritable_output_folder_is_refused_before_synthesis(tmp_path, net, sounds):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    with pytest.raises(GenerationError, match='cannot create the folder .*--output_dir'):
        generate(_settings(blocker, sounds[:1], iterations=10 ** 9), network=net)
    with pytest.raises(GenerationError, match='cannot create the folder .*--tensorboard_dir'):
        generate(_settings(tmp_path / 'out', sounds[:1], iterations=10 ** 9,
                           tensorboard_dir=str(blocker / 'tb')), network=net)


def test_duplicate_input_names_are_refused(tmp_path, net, sounds):
    other = tmp_path / 'sub'
    other.mkdir()
    copy = str(other / os.path.basename(sounds[0]))
    scipy.io.wavfile.write(copy, 2000, np.ones(10, np.float32))
    with pytest.raises(GenerationError, match='share the name'):
        generate(_settings(tmp_path, [sounds[0], copy]), network=net)


def test_folders_give_only_files_of_the_network_modality(tmp_path, net, sounds):
    folder = tmp_path / 'mixed'
    folder.mkdir()
    for path in sounds[:2]:
        (folder / os.path.basename(path)).write_bytes(open(path, 'rb').read())
    (folder / 'photo.png').write_bytes(b'\x89PNG not read for an audio network')
    (folder / 'notes.txt').write_text('ignored')
    (folder / 'sub.wav').mkdir()  # a folder named like a sound is not an input
    assert expand_inputs([str(folder), sounds[2]], 'audio') == [
        str(folder / 'word0.wav'), str(folder / 'word1.wav'), sounds[2]]
    assert expand_inputs([str(folder)], 'image') == [str(folder / 'photo.png')]
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(GenerationError, match='folder .*empty holds no audio files \\(.wav, .flac, .ogg\\)'):
        generate(_settings(tmp_path / 'out', [str(empty)]), network=net)
    assert not (tmp_path / 'out').exists()


def test_a_bad_input_stops_the_run_before_any_synthesis(tmp_path, net, sounds):
    bad = tmp_path / 'bad.wav'
    bad.write_bytes(b'RIFF not really a wave file')
    out = tmp_path / 'out'
    with pytest.raises(AudioLoadError, match='cannot read .*bad.wav'):
        generate(_settings(out, [sounds[0], str(bad)], iterations=5), network=net)
    assert not out.exists()


def test_tensorboard_curves_belong_to_their_own_input(tmp_path, net, sounds):
    out, board = tmp_path / 'out', tmp_path / 'board'
    generate(_settings(out, sounds[:2], layers=['relu1'], iterations=40, log_every=20, batch_size=2,
                       tensorboard_dir=str(board), figures=False), network=net)
    for k, path in enumerate(sounds[:2]):
        stem = os.path.splitext(os.path.basename(path))[0]
        scalars, kinds = tensorboard_events(str(board / 'toy_audio' / stem))
        saved = results.read_result(str(out / 'toy_audio' / (stem + '.h5')))['relu1']
        for step, loss in zip(saved['datasets']['loss_steps'], saved['datasets']['loss']):
            assert scalars[('loss/relu1', int(step))] == pytest.approx(loss, rel=1e-6)
        assert scalars[('spearman/relu1', 40)] == pytest.approx(saved['attrs']['spearman_matched'], rel=1e-6)
        assert ('metamer/relu1', 'audio') in kinds
    first = results.read_result(str(out / 'toy_audio' / 'word0.h5'))['relu1']['datasets']['loss']
    second = results.read_result(str(out / 'toy_audio' / 'word1.h5'))['relu1']['datasets']['loss']
    assert not np.allclose(first, second)  # two different curves, not one logged twice


def test_report_table_and_figure(generated, tmp_path):
    out, rows = generated
    null_path = str(tmp_path / 'null.h5')
    with h5py.File(null_path, 'w') as f:
        for layer, values in {'relu1': [0.1, 0.95], 'relu2': [0.2], 'logits': [0.3]}.items():
            f.create_group(layer).create_dataset('spearman', data=np.asarray(values))
    paths, table = reports.report(os.path.join(out, 'toy_audio'), str(tmp_path / 'rep'), null_path)
    assert [r['layer'] for r in table] == ['relu1', 'logits']
    relu1 = table[0]
    rhos = [r['spearman'] for r in rows if r['layer'] == 'relu1']
    same = [r['same_class'] for r in rows if r['layer'] == 'relu1']
    assert relu1['generated'] == 3
    assert relu1['passed'] == sum(1 for rho, s in zip(rhos, same) if s and rho > 0.95)
    assert relu1['median_rho'] == pytest.approx(np.median(rhos))
    assert relu1['median_null_rho'] == pytest.approx(0.525)
    with open(paths['csv']) as f:
        assert len(list(csv.DictReader(f))) == 2
    assert os.path.getsize(paths['histograms']) > 1000
    assert '| relu1 |' in open(paths['markdown']).read()


def test_transfer_to_itself_at_the_logits_is_perfect(generated, net):
    out, _ = generated
    metamers = transfer.load_metamers(os.path.join(out, 'toy_audio'))
    rows = transfer.transfer(metamers, net, generator_name='toy_audio')
    logits = [r for r in rows if r['layer'] == 'logits'][0]
    assert logits['n'] == 3 and logits['accuracy'] == 1.0
    sem = transfer.bootstrap_sem([1, 0, 1, 1, 0, 1], n_boot=2000)
    assert sem == pytest.approx(np.sqrt(4 / 6 * 2 / 6 / 6), rel=0.15)
    with pytest.raises(transfer.TransferError, match='no label'):
        transfer.transfer(metamers, net, labels={'word0': 'null'})


def _numpy_logits(net, x):
    """The toy network's logits from its weights, in numpy (Dense -> ReLU -> Dense -> ReLU -> Dense)."""
    h = np.asarray(x, np.float64)
    for name in ('d1', 'd2', 'logits'):
        kernel, bias = net.model.get_layer(name).get_weights()
        h = h @ kernel + bias
        if name != 'logits':
            h = np.maximum(h, 0)
    return h


def test_transfer_to_another_network_at_every_layer(generated):
    """Another network judges each layer's metamers: its class of the metamer against its class of
    the natural input (or against the given labels), counted here from its weights in numpy."""
    out, _ = generated
    other = toy_networks.build_toy_audio(seed=5)
    metamers = transfer.load_metamers(os.path.join(out, 'toy_audio'))
    rows = {r['layer']: r for r in transfer.transfer(metamers, other, generator_name='toy_audio')}
    names = ['null', 'w1', 'w2', 'w3', 'w4']  # toy_audio's classes, in logit order
    labels = {'word0': 'w1', 'word1': 'w3', 'word2': 'w3'}
    labelled = {r['layer']: r for r in transfer.transfer(metamers, other, labels=labels)}
    for layer in ('relu1', 'logits'):
        mine = [(stem, met, nat) for stem, lay, _, met, nat in metamers if lay == layer]
        met_class = [int(np.argmax(_numpy_logits(other, m[None])[0])) for _, m, _ in mine]
        nat_class = [int(np.argmax(_numpy_logits(other, n[None])[0])) for _, _, n in mine]
        assert rows[layer]['n'] == 3 and rows[layer]['classifier'] == 'toy_audio'
        assert rows[layer]['accuracy'] == pytest.approx(np.mean(np.equal(met_class, nat_class)))
        assert rows[layer]['chance'] == pytest.approx(1 / 5)
        expected = np.mean([names[c] == labels[stem] for (stem, _, _), c in zip(mine, met_class)])
        assert labelled[layer]['accuracy'] == pytest.approx(expected)


def test_tools_refuse_stray_words(tmp_path):
    run = subprocess.run([sys.executable, '-m', 'model_metamers.export_experiment',
                          '--results_dir=%s' % tmp_path, '--output_dir=%s' % (tmp_path / 'exp'), 'seed=3'],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith('error: unexpected argument(s) seed=3;')
    assert not (tmp_path / 'exp').exists()


def test_a_home_tilde_in_flags_is_expanded(tmp_path, monkeypatch):
    from absl import flags

    from model_metamers.cli import expand_home

    monkeypatch.setenv('HOME', str(tmp_path))
    fv = flags.FlagValues()
    flags.DEFINE_string('output_dir', None, '', flag_values=fv)
    flags.DEFINE_string('input', None, '', flag_values=fv)
    flags.DEFINE_string('layer', None, '', flag_values=fv)
    fv(['prog', '--output_dir=~/out', '--input=~/a.wav,b.wav,~/c', '--layer=conv_0'])
    expand_home(fv)
    assert fv.output_dir == str(tmp_path / 'out')
    assert fv.input == '%s,b.wav,%s' % (tmp_path / 'a.wav', tmp_path / 'c')
    assert fv.layer == 'conv_0'


def test_missing_labels_file_names_the_flag(tmp_path):
    with pytest.raises(transfer.TransferError, match='--labels file .*nope.csv does not exist'):
        transfer.load_labels(str(tmp_path / 'nope.csv'))


def test_transfer_cli_refuses_a_bootstrap_without_resamples(tmp_path):
    run = subprocess.run([sys.executable, '-m', 'model_metamers.transfer', '--bootstrap=0',
                          '--results_dir=%s' % tmp_path, '--classifiers=kws_2d',
                          '--output_dir=%s' % (tmp_path / 'out')],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith('error: --bootstrap must be at least 2')
    assert not (tmp_path / 'out').exists()


def test_experiment_export_is_loudness_matched(generated, tmp_path):
    out, _ = generated
    rows = export_experiment.export([os.path.join(out, 'toy_audio')], str(tmp_path / 'exp'),
                                    sample_format='float32')
    assert len(rows) == 6 and sorted(r['trial'] for r in rows) == list(range(1, 7))
    info = json.load(open(tmp_path / 'exp' / 'export_info.json'))
    assert 0 < info['common_gain'] <= 1
    for r in rows:
        _, met = scipy.io.wavfile.read(tmp_path / 'exp' / r['stimulus'])
        _, nat = scipy.io.wavfile.read(tmp_path / 'exp' / r['natural'])
        rms = lambda x: np.sqrt(np.mean(x.astype(np.float64) ** 2))  # noqa: E731
        assert rms(met) == pytest.approx(rms(nat), rel=1e-4)
        assert np.max(np.abs(met)) <= 0.99 + 1e-6
    with open(tmp_path / 'exp' / 'trials.csv') as f:
        trials = list(csv.DictReader(f))
    assert {t['condition'] for t in trials} == {'toy_audio__relu1', 'toy_audio__logits'}
    assert all(t['correct_answer'] for t in trials)
    with pytest.raises(export_experiment.ExportError, match='is a --results_dir; choose a separate'):
        export_experiment.export([os.path.join(out, 'toy_audio')], os.path.join(out, 'toy_audio', ''))
    with pytest.raises(export_experiment.ExportError, match='--seed must be 0 or more'):
        export_experiment.export([os.path.join(out, 'toy_audio')], str(tmp_path / 'exp2'), seed=-1)
    assert not (tmp_path / 'exp2').exists()
    other = tmp_path / 'other' / 'toy_16k'
    other.mkdir(parents=True)
    with open(os.path.join(out, 'toy_audio', 'word0.h5'), 'rb') as src:
        (other / 'word0.h5').write_bytes(src.read())
    with h5py.File(other / 'word0.h5', 'a') as f:
        f.attrs['sample_rate'] = 16000
    with pytest.raises(export_experiment.ExportError, match='mix audio at 2000 Hz and audio at 16000 Hz'):
        export_experiment.export([os.path.join(out, 'toy_audio'), str(other)], str(tmp_path / 'exp3'))
    assert not (tmp_path / 'exp3').exists()


def test_cli_errors_are_one_line(tmp_path):
    run = subprocess.run([sys.executable, 'run_generation.py', '--network=no_such_net',
                          '--output_dir=%s' % tmp_path], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1
    assert 'Traceback' not in run.stderr and 'unknown network' in run.stderr
    assert 'word_reduced_aliasing' in run.stderr
    run = subprocess.run([sys.executable, 'run_generation.py', '--network=vgg_19',
                          '--output_dir=%s' % tmp_path], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, MODEL_METAMERS_CHECKPOINT_DIR=str(tmp_path)))
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert 'model_metamers.fetch' in run.stderr and 'weights=random' in run.stderr
    assert not os.listdir(tmp_path)
    run = subprocess.run([sys.executable, 'run_generation.py', '--merge', '--network=kws_2d',
                          '--output_dir=%s' % tmp_path], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith('error: nothing to assemble')
    run = subprocess.run([sys.executable, 'run_generation.py', '--network=kws_2d', 'layer=conv_0',
                          '--output_dir=%s' % tmp_path], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith('error: unexpected argument(s) layer=conv_0;')
    run = subprocess.run([sys.executable, 'run_generation.py', '--learning_rate=-1',
                          '--output_dir=%s' % tmp_path], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith('error: --learning_rate must be')
    assert not os.listdir(tmp_path)


def test_written_files_are_readable_by_others(generated):
    out, _ = generated
    folder = os.path.join(out, 'toy_audio')
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            # Shared result folders: outputs get the umask's permissions, not mkstemp's 0600.
            assert os.stat(path).st_mode & 0o044 == 0o044 & ~_umask(), name


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_run_at_the_default_rate_is_reused_speaks_on_stderr_and_reassembles(tmp_path, net, sounds, capsys):
    # Found by mutation (issue 25, fourth pass). No --learning_rate: the network's own rate (0.001,
    # the Adam rate of SPEC §4 that MetamerNetwork defaults to) is what a rerun compares with, so the
    # parts are reused; generate() without a log speaks on stderr; a run that only has to assemble
    # still clears a killed writer's temporary file; an unsharded run writes no shard plan.
    settings = _settings(tmp_path, sounds[:1], layers=['relu1'], iterations=20, learning_rate=None,
                         log_every=10, figures=False)
    generate(settings, network=net, log=lambda msg: None)
    folder = tmp_path / 'toy_audio'
    stem = os.path.splitext(os.path.basename(sounds[0]))[0]
    with h5py.File(folder / (stem + '.h5'), 'r') as f:
        assert f['relu1'].attrs['learning_rate'] == pytest.approx(0.001)
    capsys.readouterr()
    rows = generate(settings, network=net)
    assert [(r['skipped'], r['note']) for r in rows] == [(True, '')]
    assert '%s / relu1: already done, skipped' % stem in capsys.readouterr().err
    assert not os.path.exists(folder / results.PART_DIR / results.PLAN_DIR)

    os.remove(folder / (stem + '.h5'))
    stale = folder / 'tmpkilled.tmp'
    stale.write_bytes(b'half a file')
    os.utime(stale, (1e9, 1e9))  # older naming, long ago: stale
    said = []
    rows = generate(settings, network=net, log=said.append)
    assert [r['skipped'] for r in rows] == [True] and os.path.exists(folder / (stem + '.h5'))
    assert not stale.exists()
    assert 'removed 1 temporary file(s) an interrupted run left behind' in said


def test_a_2023_part_is_validated_again_by_the_2023_rule(tmp_path, net, sounds):
    # Found by mutation (issue 25, fourth pass): revalidation read the procedure from the part; no
    # test revalidated a feather2023 part, so it could be judged by the 2019 rule (Spearman only).
    settings = _settings(tmp_path, sounds[:1], layers=['relu1'], procedure='feather2023', iterations=None,
                         learning_rate=None, stage_iterations=5, stages=2, log_every=5, figures=False)
    generate(settings, network=net)
    null_path = str(tmp_path / 'null.h5')
    with h5py.File(null_path, 'w') as f:  # every 2023 measure's null maximum written out
        f.create_dataset('relu1/spearman', data=np.array([-1.0, -0.5]))
        f.create_dataset('relu1/pearson', data=np.array([-1.0, -0.5]))
        f.create_dataset('relu1/snr_db_2023', data=np.array([-50.0, 1e9]))  # no metamer reaches it
    settings.null_distribution = null_path
    said = []
    rows = generate(settings, network=net, log=said.append)
    assert rows[0]['skipped'] and said == ['word0 / relu1: already done; validated again with %s' % null_path]
    after = results.read_result(str(tmp_path / 'toy_audio' / 'word0.h5'))['relu1']['attrs']
    assert after['criterion'].startswith('same class (') and 'dB SNR (2023) each >= null max' in after['criterion']
    # Spearman alone is above its null maximum (-0.5): the 2019 rule could pass it; 2023 cannot.
    assert after['spearman_matched'] > -0.5 and after['null_max_snr_db'] == 1e9 and not after['passed']
