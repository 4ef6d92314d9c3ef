"""Null distributions: rank-once statistics equal scipy's per-pair ones; shards merge exactly."""

import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io.wavfile
import scipy.stats

from model_metamers import null_distribution as nd
from tests import toy_networks
from tests.conftest import REPO


def _activations(n=12, f=300, seed=0):
    rng = np.random.RandomState(seed)
    acts = np.maximum(rng.randn(n, f), 0)          # ReLU: many tied zeros
    acts[:, :40] = np.round(acts[:, :40], 1)       # more ties
    acts[3] = 0                                     # an all-zero stimulus
    return acts


def test_rank_once_equals_scipy_per_pair():
    acts = _activations()
    summary = nd.LayerSummary(acts)
    pairs = nd.sample_pairs(len(acts), 200, seed=1)
    spear, pear, snr = summary.pair_statistics(pairs, block=7)
    for k, (i, j) in enumerate(pairs):
        a, b = acts[i], acts[j]
        if i == 3 or j == 3:
            assert spear[k] == 0 and pear[k] == 0  # all-zero activations count as 0
            continue
        assert spear[k] == pytest.approx(scipy.stats.spearmanr(a, b).correlation, abs=1e-6)
        assert pear[k] == pytest.approx(scipy.stats.pearsonr(a, b)[0], abs=1e-6)
        assert snr[k] == pytest.approx(10 * np.log10(np.sum(a ** 2) / np.sum((a - b) ** 2)), abs=1e-4)
    assert np.all(pairs[:, 0] != pairs[:, 1])


def test_pairs_are_seeded_and_shards_partition_them():
    a = nd.sample_pairs(50, 1000, seed=3)
    np.testing.assert_array_equal(a, nd.sample_pairs(50, 1000, seed=3))
    assert not np.array_equal(a, nd.sample_pairs(50, 1000, seed=4))
    parts = [a[nd.shard_slice(1000, 3, k)] for k in range(3)]
    np.testing.assert_array_equal(np.concatenate(parts), a)


def test_pairs_are_uniform_over_ordered_pairs_of_distinct_stimuli():
    pairs = nd.sample_pairs(4, 12000, seed=0)
    counts = {}
    for i, j in pairs:
        counts[(i, j)] = counts.get((i, j), 0) + 1
    # 12 ordered pairs of 4 stimuli, ~1000 draws each (binomial sd ~29): every one is drawn evenly.
    assert sorted(counts) == [(i, j) for i in range(4) for j in range(4) if i != j]
    assert all(850 < c < 1150 for c in counts.values()), counts
    assert sorted(map(tuple, np.sort(nd.sample_pairs(2, 6, seed=1), axis=1))) == [(0, 1)] * 6
    with pytest.raises(nd.NullDistributionError, match='a null needs at least 2 stimuli, got 1'):
        nd.sample_pairs(1, 5)
    with pytest.raises(nd.NullDistributionError, match='a null needs at least 2 stimuli, got 1'):
        nd.consecutive_pairs(1, 5)
    np.testing.assert_array_equal(nd.consecutive_pairs(2, 2), [[0, 1], [2, 3]])


def test_shards_merge_to_the_single_run(tmp_path):
    net = toy_networks.build_toy_audio()
    stimuli = np.random.RandomState(0).randn(10, 4000).astype(np.float32) * 0.1
    single = nd.compute_null(net, stimuli, num_pairs=60, seed=2)
    out = str(tmp_path / 'null.h5')
    for k in range(3):
        part = nd.compute_null(net, stimuli, num_pairs=60, seed=2, num_shards=3, shard_index=k)
        nd.write_null(nd.shard_path(out, 3, k), part, {'seed': 2})
    with pytest.raises(nd.NullDistributionError, match='missing'):
        nd.merge_shards(str(tmp_path / 'other.h5'), 3)
    nd.merge_shards(out, 3)
    with h5py.File(out, 'r') as f:
        assert set(f) == {'relu1', 'relu2', 'logits'}
        for layer in f:
            np.testing.assert_allclose(f[layer]['spearman'][()], single[layer]['spearman'], atol=1e-12)
            np.testing.assert_array_equal(f[layer]['pairs'][()], single[layer]['pairs'])
            assert f[layer].attrs['n_features'] == single[layer]['n_features']
    # The merged file is a valid null for validation.
    from model_metamers.validation import load_null
    assert load_null(out)['relu1'].shape == (60,)


def test_random_pairs_hold_the_statistics_of_the_stimuli_they_name():
    # The paper's pairing, checked against the network's own activations (found by a mutation run,
    # issue 25: the stimulus remapping and batching of compute_null were only compared with themselves).
    net = toy_networks.build_toy_audio()
    stimuli = np.random.RandomState(3).randn(7, 4000).astype(np.float32) * 0.1
    got = nd.compute_null(net, stimuli, layers=['relu1'], num_pairs=12, seed=5, batch_size=3)
    assert set(got) == {'relu1', 'logits'}  # the logits are always added (the class check's layer)
    np.testing.assert_array_equal(got['relu1']['pairs'], nd.sample_pairs(7, 12, seed=5))
    acts = net.activations(stimuli, ['relu1', 'logits'])
    for layer in ('relu1', 'logits'):
        values = acts[layer].numpy().reshape(7, -1)
        assert got[layer]['n_features'] == values.shape[1]
        for k, (i, j) in enumerate(got[layer]['pairs']):
            a, b = values[i].astype(np.float64), values[j].astype(np.float64)
            assert got[layer]['spearman'][k] == pytest.approx(scipy.stats.spearmanr(a, b)[0], abs=1e-5)
            assert got[layer]['pearson'][k] == pytest.approx(scipy.stats.pearsonr(a, b)[0], abs=1e-5)
            assert got[layer]['snr_db'][k] == pytest.approx(
                10 * np.log10(np.sum(a ** 2) / np.sum((a - b) ** 2)), abs=1e-3)
            assert got[layer]['snr_db_2023'][k] == pytest.approx(got[layer]['snr_db'][k] / 2)


def test_the_2023_snr_is_zero_where_either_activation_sums_to_zero():
    acts = _activations()  # stimulus 3 is all zeros
    summary = nd.LayerSummary(acts)
    pairs = np.array([[0, 1], [3, 1], [1, 3], [2, 5]])
    _, _, snr = summary.pair_statistics(pairs)
    got = summary.snr_db_2023(pairs, snr)
    np.testing.assert_array_equal(got[1:3], 0)
    np.testing.assert_allclose(got[[0, 3]], snr[[0, 3]] / 2)
    assert np.all(got[[0, 3]] != 0)
    # Signed activations (logits) summing to exactly zero count too, whichever of the pair they are.
    signed = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, -3.0, 1.5, -1.5], [0.5, 1.0, 0.0, 2.0]])
    summary = nd.LayerSummary(signed)
    pairs = np.array([[0, 1], [1, 0], [0, 2]])
    _, _, snr = summary.pair_statistics(pairs)
    assert np.all(np.isfinite(snr)) and np.all(snr != 0)
    np.testing.assert_allclose(summary.snr_db_2023(pairs, snr), [0, 0, snr[2] / 2])


def test_cli_end_to_end_on_a_folder(tmp_path):
    data = tmp_path / 'sounds'
    data.mkdir()
    rng = np.random.RandomState(0)
    for i in range(5):
        scipy.io.wavfile.write(data / ('s%d.wav' % i), 2000, rng.randn(4000).astype(np.float32))
    out = tmp_path / 'null.h5'
    code = ('import sys; sys.argv=["nd"]+sys.argv[1:]; import tests.toy_networks; '
            'from model_metamers import null_distribution as nd; '
            'from model_metamers import cli; cli.run(nd.main, nd._define_flags)')
    run = subprocess.run([sys.executable, '-c', code, '--network=toy_audio', '--weights=random',
                          '--dataset=%s' % data, '--num_pairs=40', '--output=%s' % out],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    with h5py.File(out, 'r') as f:
        assert f['relu2']['spearman'].shape == (40,) and f.attrs['n_stimuli'] == 5
        assert f.attrs['network'] == 'toy_audio' and f.attrs['weights_sha1'] == 'random'
    # 5 stimuli give 10 pairs; 40 asked: the run says so.
    assert 'note: 40 pairs asked, but 5 stimuli give only 10 distinct pairs; 10 distinct' in run.stderr
    bad = subprocess.run([sys.executable, '-c', code, '--network=toy_audio', '--weights=random',
                          '--dataset=%s' % (tmp_path / 'nothing'), '--output=%s' % out],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 1 and 'Traceback' not in bad.stderr and 'error:' in bad.stderr
    bad = subprocess.run([sys.executable, '-c', code, '--network=toy_audio', '--weights=random',
                          '--dataset=%s' % data, '--num_pairs=0', '--output=%s' % out],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 1 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith('error: --num_pairs must be at least 1')
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    bad = subprocess.run([sys.executable, '-c', code, '--network=toy_audio', '--weights=random',
                          '--dataset=%s' % data, '--num_pairs=40',
                          '--output=%s' % (blocker / 'null.h5')], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 1 and 'Traceback' not in bad.stderr
    assert 'choose a writable --output' in bad.stderr and 'activations' not in bad.stderr


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_pairs=0), '--num_pairs must be at least 1'),
    (dict(num_pairs=-5), '--num_pairs must be at least 1'),
    (dict(num_pairs=2, num_shards=3, shard_index=0), 'cannot be split over 3 shards'),
    (dict(seed=-1), '--seed must be 0 or more'),
    (dict(batch_size=0), '--batch_size must be at least 1'),
    (dict(num_shards=0), '--num_shards must be at least 1'),
    (dict(num_shards=2, shard_index=2), '--shard_index must be in 0 .. 1 for --num_shards=2'),
])
def test_bad_counts_are_refused_with_the_fix(kwargs, message):
    net = toy_networks.build_toy_audio()
    stimuli = np.random.RandomState(0).randn(4, 4000).astype(np.float32) * 0.1
    settings = dict(num_pairs=10)
    settings.update(kwargs)
    with pytest.raises(nd.NullDistributionError, match=message):
        nd.compute_null(net, stimuli, **settings)


def _shards(tmp_path, name='null.h5', num_shards=3, overrides=None):
    """Shard files of one null (toy numbers), with per-shard attribute overrides {index: {attr: value}}."""
    out = str(tmp_path / name)
    for k in range(num_shards):
        attrs = {'network': 'toy_audio', 'weights': 'random', 'weights_sha1': 'random', 'dataset': 'clips/',
                 'seed': 0, 'num_pairs': 30, 'n_stimuli': 8, 'shard_index': k, 'num_shards': num_shards}
        attrs.update((overrides or {}).get(k, {}))
        data = {'relu1': {'spearman': np.full(10, 0.1 * k), 'pearson': np.zeros(10), 'snr_db': np.zeros(10),
                          'pairs': np.zeros((10, 2), np.int64), 'n_features': 32}}
        nd.write_null(nd.shard_path(out, num_shards, k), data, attrs)
    return out


@pytest.mark.parametrize('override,message', [
    ({'seed': 1}, "different seed .*seed 0 vs 1"),
    ({'dataset': 'other_clips/'}, "different dataset .*'clips/' vs 'other_clips/'"),
    ({'network': 'kws_2d'}, 'different network'),
    ({'weights_sha1': 'abc'}, 'different weights_sha1'),
    ({'num_pairs': 40}, 'different num_pairs'),
    ({'n_stimuli': 9}, 'different n_stimuli'),
    ({'weights': 'other.weights.h5'}, 'different weights'),
    ({'pairing': 'consecutive'}, 'different pairing'),
    ({'augment': 'time shift'}, 'different augment'),
])
def test_merge_refuses_shards_made_with_other_settings(tmp_path, override, message):
    out = _shards(tmp_path, overrides={2: override})
    with pytest.raises(nd.NullDistributionError, match='cannot merge: .*' + message):
        nd.merge_shards(out, 3)
    assert not os.path.exists(out)


def test_merge_refuses_a_shard_in_the_wrong_place_or_with_other_layers(tmp_path):
    out = _shards(tmp_path, overrides={1: {'shard_index': 2}})
    with pytest.raises(nd.NullDistributionError, match='says it is shard 2, not 1; rerun it'):
        nd.merge_shards(out, 3)
    out = _shards(tmp_path, name='two.h5')
    with h5py.File(nd.shard_path(out, 3, 1), 'a') as f:
        f.create_group('relu2').attrs['n_features'] = 32
    with pytest.raises(nd.NullDistributionError, match='hold different layers \\(relu1 vs relu1, relu2\\)'):
        nd.merge_shards(out, 3)
    assert not os.path.exists(out)


def test_merged_values_are_the_shards_in_shard_order(tmp_path):
    out = _shards(tmp_path)
    nd.merge_shards(out, 3, compact=True)
    with h5py.File(out, 'r') as f:
        np.testing.assert_allclose(f['relu1']['spearman'][()], np.repeat([0.0, 0.1, 0.2], 10), atol=1e-7)
        assert f['relu1']['spearman'].dtype == np.float32 and 'pairs' not in f['relu1']
        assert f['relu1'].attrs['max_spearman'] == pytest.approx(0.2)
        assert f['relu1'].attrs['n_features'] == 32
        assert f.attrs['network'] == 'toy_audio' and f.attrs['num_pairs'] == 30
    # An --output without a suffix: the shards are .h5 files, and --merge finds them.
    bare = _shards(tmp_path, name='bare', num_shards=2)
    assert os.path.exists(str(tmp_path / 'bare.shard-00001-of-00002.h5'))
    assert nd.find_num_shards(bare) == 2


def test_merge_finds_the_shard_count_and_never_rewrites_a_merged_file(tmp_path):
    out = _shards(tmp_path)
    with pytest.raises(nd.NullDistributionError, match='no shard files'):
        nd.merge_shards(str(tmp_path / 'other.h5'))
    nd.merge_shards(out)  # --num_shards not given: 3, from the files
    with h5py.File(out, 'r') as f:
        assert f.attrs['num_shards'] == 3 and f['relu1']['spearman'].shape == (30,)
    with pytest.raises(nd.NullDistributionError, match='nothing to merge'):
        nd.merge_shards(out, 1)
    with h5py.File(out, 'r') as f:
        assert f.attrs['num_shards'] == 3
    _shards(tmp_path, num_shards=2)
    with pytest.raises(nd.NullDistributionError, match='2 different --num_shards \\(2, 3\\)'):
        nd.merge_shards(out)


def test_more_pairs_than_distinct_pairs_is_noted():
    assert nd.distinct_pairs_note(10, 45) is None
    note = nd.distinct_pairs_note(10, 100, seed=0)
    pairs = np.sort(nd.sample_pairs(10, 100, 0), axis=1)
    drawn = len({tuple(p) for p in pairs})
    assert drawn < 45
    assert note.startswith('note: 100 pairs asked, but 10 stimuli give only 45 distinct pairs; %d distinct '
                           'pairs were drawn' % drawn)


def test_tfrecord_waveforms_and_images_are_prepared_like_files(tmp_path):
    """A TFRecord's float waveform is cut/padded to the input and scaled to RMS 0.1; its encoded
    image is centre-cropped and resized like an image file; a missing feature is named."""
    import tensorflow as tf
    from model_metamers import images

    audio_net, image_net = toy_networks.build_toy_audio(), toy_networks.build_toy_image()
    n = audio_net.input_shape[0]
    rng = np.random.RandomState(0)
    waves = [rng.randn(n + 500), rng.randn(n - 300)]
    pictures = [rng.uniform(0, 1, (30, 20, 3)), rng.uniform(0, 1, (20, 24, 3))]
    png_paths = [str(tmp_path / ('p%d.png' % k)) for k in range(2)]
    for path, picture in zip(png_paths, pictures):
        images.save_png(path, picture)
    record = str(tmp_path / 'data.tfrecord')
    with tf.io.TFRecordWriter(record) as writer:
        for wave, path in zip(waves, png_paths):
            features = {'signal': tf.train.Feature(float_list=tf.train.FloatList(value=wave)),
                        'image': tf.train.Feature(bytes_list=tf.train.BytesList(value=[open(path, 'rb').read()]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    got = nd.load_stimuli(audio_net, [record])
    assert got.shape == (2, n)
    cut = waves[0][250:250 + n]  # centred cut of the longer clip
    padded = np.concatenate([np.zeros(150), waves[1], np.zeros(150)])  # centred zero padding
    for stim, raw in zip(got, [cut, padded]):
        expected = (raw - raw.mean()) / np.sqrt(np.mean((raw - raw.mean()) ** 2)) * 0.1
        np.testing.assert_allclose(stim, np.asarray(expected, np.float32), rtol=1e-4, atol=1e-5)
    pics = nd.load_stimuli(image_net, [record], feature='image')
    for pic, path in zip(pics, png_paths):
        np.testing.assert_allclose(pic, images.load_image(path, size=image_net.input_shape[0]), atol=1e-6)
    with pytest.raises(nd.NullDistributionError, match="no feature 'waveform' \\(they have"):
        nd.load_stimuli(audio_net, [record], feature='waveform')


def test_a_null_file_says_what_it_holds(tmp_path):
    # Found by mutation (issue 25, fourth pass): the file's own description could be dropped or
    # renamed unnoticed. 'format' is how the results reader tells a null from a result, and the
    # definitions say which SNR each dataset holds (the two differ: power ratio vs ratio of norms).
    values = {'spearman': np.linspace(-0.1, 0.3, 6), 'pearson': np.zeros(6), 'snr_db': np.ones(6),
              'pairs': np.arange(12).reshape(6, 2), 'n_features': 7}
    plain, with_2023 = str(tmp_path / 'plain.h5'), str(tmp_path / 'with_2023.h5')
    nd.write_null(plain, {'relu1': values}, {'network': 'toy_audio'})
    nd.write_null(with_2023, {'relu1': dict(values, snr_db_2023=np.full(6, 2.0))}, {'network': 'toy_audio'},
                  compact=True)
    with h5py.File(plain, 'r') as f:
        assert f.attrs['format'] == 'model_metamers.null.v1'
        assert 'power ratio' in f.attrs['snr_db_definition']
        assert 'snr_db_2023_definition' not in f.attrs and 'compact' not in f.attrs
        assert sorted(f['relu1']) == ['pairs', 'pearson', 'snr_db', 'spearman']
        np.testing.assert_array_equal(f['relu1']['pairs'][()], values['pairs'])
        assert f['relu1']['spearman'].dtype == np.float64
    with h5py.File(with_2023, 'r') as f:
        assert f.attrs['format'] == 'model_metamers.null.v1'
        assert 'ratio of norms' in f.attrs['snr_db_2023_definition']
        # compact: float32, gzip with the byte shuffle (about 5 MB for the shipped 100k-pair null),
        # and no pairs: sample_pairs(n_stimuli, num_pairs, seed) gives them again; the file says so.
        assert f.attrs['compact'] == True  # noqa: E712 (an HDF5 numpy bool)
        assert sorted(f['relu1']) == ['pearson', 'snr_db', 'snr_db_2023', 'spearman']
        data = f['relu1']['snr_db_2023']
        assert data.dtype == np.float32 and data.compression == 'gzip' and data.shuffle
        np.testing.assert_array_equal(data[()], 2.0)


def test_a_refusal_names_the_null_it_refuses(tmp_path):
    path = str(tmp_path / 'mine.null.h5')
    nd.write_null(path, {'relu1': {'spearman': np.zeros(3), 'n_features': 1}},
                  {'network': 'toy_audio', 'weights': 'a.weights.h5', 'weights_sha1': 'a' * 40})
    with pytest.raises(nd.NullMismatchError, match='^%s was computed for network toy_audio, not kws_2d'
                       % re.escape(path)):
        nd.check_matches(path, 'kws_2d')
    with pytest.raises(nd.NullMismatchError, match='^%s was computed with other weights of toy_audio '
                       r'\(a.weights.h5, SHA-1 a{12}\) than these \(SHA-1 b{12}\)' % re.escape(path)):
        nd.check_matches(path, 'toy_audio', 'b' * 40)
    with pytest.raises(nd.NullMismatchError, match='^the null distribution was computed for network'):
        nd.check_matches({'network': 'toy_audio'}, 'kws_2d')
    with pytest.raises(nd.NullMismatchError, match='^published.pckl was computed for network'):
        nd.check_matches({'network': 'toy_audio'}, 'kws_2d', source='published.pckl')
    nd.check_matches(path, 'toy_audio', 'a' * 40)
    nd.check_matches(path, 'toy_audio')


def test_two_shards_of_a_2023_null_merge_into_one_null_with_its_2023_snr(tmp_path):
    # Found by mutation (issue 25, fourth pass): two shards (the smallest split) refused, the 2023
    # SNR dropped from a merged null, the merged file still calling itself shard 0, and a one-shard
    # gap reported as an IndexError.
    out = str(tmp_path / 'null.h5')
    for k in range(2):
        data = {'relu1': {'spearman': np.full(4, 0.1 * k), 'pearson': np.zeros(4), 'snr_db': np.zeros(4),
                          'snr_db_2023': np.full(4, 10.0 + k), 'pairs': np.zeros((4, 2), np.int64),
                          'n_features': 5}}
        nd.write_null(nd.shard_path(out, 2, k), data, {'network': 'toy_audio', 'seed': 0, 'num_pairs': 8,
                                                         'shard_index': k, 'num_shards': 2})
    os.rename(nd.shard_path(out, 2, 1), str(tmp_path / 'aside.h5'))
    with pytest.raises(nd.NullDistributionError, match='^cannot merge: 1 shard file\\(s\\) missing, e.g. %s;'
                       % re.escape(nd.shard_path(out, 2, 1))):
        nd.merge_shards(out, 2)
    os.rename(str(tmp_path / 'aside.h5'), nd.shard_path(out, 2, 1))
    nd.merge_shards(out, 2)
    with h5py.File(out, 'r') as f:
        np.testing.assert_array_equal(f['relu1']['snr_db_2023'][()], [10.0] * 4 + [11.0] * 4)
        assert 'ratio of norms' in f.attrs['snr_db_2023_definition']
        assert 'shard_index' not in f.attrs and f.attrs['num_shards'] == 2
    from model_metamers.validation import load_null
    assert load_null(out, measures=True)['relu1']['snr_db_2023'].shape == (8,)


def test_merge_refuses_a_shard_that_lacks_a_setting_the_others_record(tmp_path):
    out = _shards(tmp_path, overrides={0: {'augment': 'time shift'}})
    with pytest.raises(nd.NullDistributionError, match="different augment .*'time shift' vs None"):
        nd.merge_shards(out, 3)
    assert not os.path.exists(out)
