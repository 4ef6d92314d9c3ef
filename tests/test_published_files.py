"""The original release's files, written in their published structure (tests/published_release.py).

Network-configuration pickles are read without running them, give the layer
names and options, and are compared layer by layer with the Keras build; the
published null distributions are used directly (keys mapped to our layer
names) and converted to HDF5; a pickle that would run code is refused with
nothing run; and the audio tarball goes from ``fetch`` to validated metamers
with no other flag than ``--network``.
"""

import os
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest

from model_metamers import convert_checkpoint, published_nulls, safe_pickle, validation
from model_metamers.networks.weights.checkpoints import CheckpointError

from tests import published_release as release

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tf.layers auto-names, as a network built without explicit batch-norm names would have
BN_NAMES = ('batch_normalization', 'batch_normalization_1', 'batch_normalization_2')
# Keras layer -> position of its batch norm in Table S3's sequence (input, after pool_0_1, pool_1_1)
KERAS_BN = {'batch_norm_0': BN_NAMES[0], 'batch_norm_1': BN_NAMES[1], 'batch_norm_2': BN_NAMES[2]}


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
    env.update(extra)
    return env


@pytest.fixture(scope='module')
def renamed_release(tmp_path_factory):
    """A reduced-aliasing checkpoint whose batch norms have the tf.layers auto-names, with the
    release's pickle (normalised Hanning windows) beside it."""
    folder = tmp_path_factory.mktemp('release')
    prefix = str(folder / 'word_reduced_aliasing.ckpt')
    values = release.write_word_checkpoint(
        prefix, release.word_checkpoint_shapes('reduced_aliasing', BN_NAMES), zero_dense=True)
    release.write_network_pickle(str(folder / 'word_network_reduced_aliasing.pckl'),
                                 release.word_layers('reduced_aliasing', BN_NAMES, normalize=True))
    return {'folder': folder, 'prefix': prefix, 'values': values}


def test_pickle_gives_names_and_options_and_conversion_uses_them(renamed_release, tmp_path):
    output = str(tmp_path / 'wra.weights.h5')
    _, net = convert_checkpoint.convert('word_reduced_aliasing', renamed_release['prefix'], output)
    values = renamed_release['values']
    with h5py.File(output, 'r') as f:
        assert f.attrs['network_config'].endswith('word_network_reduced_aliasing.pckl')
        assert '"hanning_normalize": true' in f.attrs['build_options']
        assert '"avgpool_padding": "SAME"' in f.attrs['build_options']
        for keras_name, tf1 in KERAS_BN.items():
            for var in ('gamma', 'beta', 'moving_mean', 'moving_variance'):
                np.testing.assert_array_equal(f['%s/%s' % (keras_name, var)][()],
                                              values['brain_network/%s/%s' % (tf1, var)])
        np.testing.assert_array_equal(f['conv_3/kernel'][()], values['brain_network/conv_3/kernel'])
        np.testing.assert_array_equal(f['fc_top_word/bias'][()], values['brain_network/fc_top_0/bias'])
    assert net.info['build_options']['hanning_normalize'] is True
    report = net.info['weights_report']
    assert 'layer names and options from' in report and 'optimiser slots' in report, report


def test_without_the_pickle_the_guessed_names_do_not_fit(renamed_release, tmp_path):
    """The same checkpoint in a folder without the pickle: our default names do not fit it."""
    for name in os.listdir(renamed_release['folder']):
        if name.startswith('word_reduced_aliasing.ckpt'):
            os.symlink(str(renamed_release['folder'] / name), str(tmp_path / name))
    with pytest.raises(CheckpointError, match='expected checkpoint variables that are missing'):
        convert_checkpoint.convert('word_reduced_aliasing', str(tmp_path / 'word_reduced_aliasing.ckpt'),
                                   str(tmp_path / 'x.weights.h5'))


def test_option_contradicting_the_pickle_is_refused(renamed_release, tmp_path):
    with pytest.raises(CheckpointError, match='hanning_normalize was given as False'):
        convert_checkpoint.convert('word_reduced_aliasing', renamed_release['prefix'],
                                   str(tmp_path / 'x.weights.h5'), hanning_normalize=False)


def test_architecture_difference_is_refused_with_a_side_by_side_table(renamed_release, tmp_path):
    layers = release.word_layers('reduced_aliasing', BN_NAMES, normalize=True)
    layers = [(t, dict(a, filters=768) if a.get('name') == 'conv_3' else a) for t, a in layers]
    config = release.write_network_pickle(str(tmp_path / 'other.pckl'), layers)
    output = str(tmp_path / 'x.weights.h5')
    proc = subprocess.run(
        [sys.executable, '-m', 'model_metamers.convert_checkpoint', '--network=word_reduced_aliasing',
         '--checkpoint=' + renamed_release['prefix'], '--network_config=' + config,
         '--output=' + output], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 1
    rows = [line for line in proc.stderr.splitlines() if ' <> ' in line]
    assert len(rows) == 1 and 'conv_3 conv filters=768' in rows[0] and 'filters=1024' in rows[0], \
        proc.stderr
    assert 'does not match the Keras build of word_reduced_aliasing in 1 layer(s)' in proc.stderr
    assert not os.path.exists(output)


def test_inspect_prints_variables_layers_and_mapping(renamed_release):
    text = convert_checkpoint.inspect('word_reduced_aliasing', renamed_release['prefix'])
    assert 'read without running it' in text
    assert 'brain_network/batch_normalization_1/gamma' in text
    rows = {row.split()[0]: row for row in text.splitlines() if row.startswith('  ') and row.split()}
    assert rows['brain_network/batch_normalization_1/gamma'].rstrip().endswith('-> batch_norm_1/gamma')
    assert 'skipped: training step' in rows['global_step'], text
    assert 'skipped: optimiser slots' in rows['brain_network/conv_0/kernel/Adam'], text
    assert 'hpool' in text and 'pool_0_0' in text


class _RunsCode:
    """Pickles as a call of ``os.system`` that would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ('touch %s' % self.marker,))


def test_pickles_that_would_run_code_are_not_run(tmp_path):
    marker = tmp_path / 'ran'
    bad_null = tmp_path / 'word_reduced_aliasing_null_dist_spearman_r.pckl'
    with open(bad_null, 'wb') as f:
        pickle.dump({'pool_0_0': [0.1, 0.2], 'logits': _RunsCode(marker)}, f, protocol=3)
    with pytest.raises(safe_pickle.UnsafePickleError) as error:
        validation.load_null(str(bad_null))
    assert 'posix.system' in str(error.value) or 'os.system' in str(error.value)
    assert len(str(error.value).splitlines()) == 1
    # a configuration pickle is read inertly: the call is recorded, never made
    layers = release.word_layers('aliased')
    config = release.write_network_pickle(str(tmp_path / 'word_network_aliased.pckl'), layers)
    data = safe_pickle.load_inert(config)
    with open(tmp_path / 'evil_config.pckl', 'wb') as f:
        pickle.dump({'graph_architecture': [], 'layer_list': [], 'x': _RunsCode(marker)}, f)
    record = safe_pickle.load_inert(str(tmp_path / 'evil_config.pckl'))
    assert isinstance(record['x'], safe_pickle.InertCall)
    func, args, keywords = data['layer_list'][1].partial_parts()
    assert func.qualified_name == 'tensorflow.python.layers.convolutional.conv2d'
    assert keywords['filters'] == 96 and keywords['strides'] == 3
    assert not marker.exists()
    # the CLI says it in one line
    proc = subprocess.run(
        [sys.executable, 'run_generation.py', '--network=kws_2d', '--iterations=1',
         '--layer=conv_0', '--output_dir=' + str(tmp_path / 'out'),
         '--null_distribution=' + str(bad_null)], capture_output=True, text=True, cwd=ROOT,
        env=_env(), timeout=300)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr
    assert 'is not a data pickle' in proc.stderr and not marker.exists()


# SPEC §"metamer layers" (Tables S4/S5), in this package's names.
@pytest.mark.parametrize('network, layers', [
    ('word_aliased', ['cochleagram', 'conv_0', 'conv_1', 'conv_2', 'conv_3', 'conv_4', 'fc_intermediate',
                      'logits']),
    ('word_reduced_aliasing', ['cochleagram', 'pool_0_0', 'pool_1_0', 'conv_2', 'conv_3', 'conv_4',
                               'fc_intermediate', 'logits']),
    ('vgg_19', ['conv1_2', 'conv2_2', 'conv3_4', 'conv4_4', 'conv5_4', 'fc6', 'fc7', 'fc8'])])
def test_published_null_keys_map_to_the_metamer_layers(network, layers, tmp_path):
    path = tmp_path / published_nulls.FILES[network]
    data = release.write_null_pickle(str(path), network)
    null = validation.load_null(str(path))
    assert sorted(null) == sorted(layers)
    for key, values in data.items():
        np.testing.assert_array_equal(null[published_nulls.layer_name(key)], values)
    assert published_nulls.network_of(str(path)) == network


def test_null_convert_writes_the_hdf5_form(tmp_path):
    source = tmp_path / published_nulls.FILES['vgg_19']
    data = release.write_null_pickle(str(source), 'vgg_19', pairs=500)
    output = tmp_path / 'vgg.null.h5'
    proc = subprocess.run(
        [sys.executable, '-m', 'model_metamers.null_distribution', '--convert=' + str(source),
         '--output=' + str(output)], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    null = validation.load_null(str(output))
    np.testing.assert_array_equal(null['conv5_4'], data['conv5_4_jittered_relu'])
    with h5py.File(output, 'r') as f:
        assert f.attrs['network'] == 'vgg_19' and f.attrs['num_pairs'] == 500
    bad = subprocess.run(
        [sys.executable, '-m', 'model_metamers.null_distribution', '--convert=' + str(source),
         '--network=word_aliased', '--output=' + str(tmp_path / 'x.h5')],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert bad.returncode == 1 and 'published null of vgg_19, not of --network=word_aliased' in bad.stderr


# ------------------------------------------------------------------ fetch -> metamers
def test_fetch_then_generation_with_no_other_flag(server, tmp_path):
    """The audio tarball with its published member names -> fetch -> run_generation: converted
    on first use (with a progress line), the published null found, the paper's criterion on."""
    staging = tmp_path / 'staging'
    prefix = str(staging / 'word_reduced_aliasing.ckpt')
    release.write_word_checkpoint(prefix, release.word_checkpoint_shapes('reduced_aliasing'),
                                  zero_dense=True)
    (staging / 'word_reduced_aliasing.ckpt.meta').write_bytes(b'meta graph (not read)')
    release.write_network_pickle(str(staging / 'word_network_reduced_aliasing.pckl'),
                                 release.word_layers('reduced_aliasing'))
    release.write_network_pickle(str(staging / 'word_network_aliased.pckl'),
                                 release.word_layers('aliased'))
    nulls = {}
    for network in ('word_aliased', 'word_reduced_aliasing'):
        nulls[network] = release.write_null_pickle(str(staging / published_nulls.FILES[network]),
                                                   network, high=0.25)
    tarball = str(tmp_path / 'metamers_audio_models_network_files.tar.gz')
    release.write_audio_tarball(tarball, {name: str(staging / name) for name in os.listdir(staging)})
    with open(tarball, 'rb') as f:
        server.files['/metamers_audio_models_network_files.tar.gz'] = f.read()
    url = server.url + '/metamers_audio_models_network_files.tar.gz'
    checkpoints_dir = tmp_path / 'checkpoints'
    env = _env(MODEL_METAMERS_CHECKPOINT_DIR=str(checkpoints_dir))
    got = subprocess.run([sys.executable, '-m', 'model_metamers.fetch', '--network=word_reduced_aliasing',
                          '--url=' + url, '--noprogress'], capture_output=True, text=True, env=env,
                         timeout=300)
    assert got.returncode == 0, got.stderr
    out = tmp_path / 'out'
    run = subprocess.run([sys.executable, 'run_generation.py', '--network=word_reduced_aliasing',
                          '--layer=pool_0_0', '--iterations=2', '--output_dir=' + str(out),
                          '--nofigures'], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'converting %s' % (checkpoints_dir / 'word_reduced_aliasing.ckpt') in run.stderr
    assert 'null distribution: %s' % (checkpoints_dir / published_nulls.FILES['word_reduced_aliasing']) \
        in run.stderr
    assert (checkpoints_dir / 'word_reduced_aliasing.weights.h5').exists()
    results = list((out / 'word_reduced_aliasing').glob('*.h5'))
    assert len(results) == 1
    with h5py.File(results[0], 'r') as f:
        attrs = dict(f['pool_0_0'].attrs)
    assert attrs['null_max'] == pytest.approx(max(nulls['word_reduced_aliasing']['pool_0_0']))
    assert 'null max' in str(attrs['criterion'])
    # a second run finds the converted file and does not convert again
    again = subprocess.run([sys.executable, 'run_generation.py', '--network=word_reduced_aliasing',
                            '--layer=pool_0_0', '--iterations=2', '--output_dir=' + str(out),
                            '--nofigures'], capture_output=True, text=True, cwd=ROOT, env=env,
                           timeout=600)
    assert again.returncode == 0 and 'converting' not in again.stderr, again.stderr[-2000:]


def test_a_converted_null_records_where_it_came_from(tmp_path):
    # Found by mutation (issue 25, fourth pass): nothing read the provenance a converted null
    # records, so it could be lost or wrong unnoticed.
    from model_metamers import null_distribution as nd
    source = tmp_path / published_nulls.FILES['word_aliased']
    data = release.write_null_pickle(str(source), 'word_aliased', pairs=40)
    output = str(tmp_path / 'word.null.h5')
    assert nd.convert_published(str(source), output) == (output, 'word_aliased', {
        published_nulls.layer_name(key): 40 for key in data})
    with h5py.File(output, 'r') as f:
        assert f.attrs['network'] == 'word_aliased' and f.attrs['weights'] == 'published'
        assert f.attrs['source'] == os.path.abspath(str(source))
        assert f.attrs['converted_from'] == 'published pickle'
        # The pickle holds no seed, shard or feature count: recorded as such, not as a real value.
        assert f.attrs['seed'] == -1 and f.attrs['num_shards'] == 1 and f.attrs['num_pairs'] == 40
        assert {f[g].attrs['n_features'] for g in f} == {-1}
    renamed = tmp_path / 'my_null.pckl'
    source.rename(renamed)
    with pytest.raises(nd.NullDistributionError, match=r'^cannot tell which network .*my_null.pckl belongs to '
                       r'\(published files: vgg_null_dist_spearman_r.pckl, word_aliased_null_dist.*\); '
                       'add --network=NAME$'):
        nd.convert_published(str(renamed), str(tmp_path / 'x.h5'))
    assert nd.convert_published(str(renamed), str(tmp_path / 'x.h5'), network='word_aliased')[1] == 'word_aliased'
