"""The five audio networks: Table S4 sizes, TF1 checkpoint round trip, conversion, errors.

The reference is an independent TF1 graph (``tf1_reference.audio``: ``tf.layers``
under ``brain_network/``, the original's dense Hanning pooling) with random
weights and random batch-norm moving statistics, saved with
``tf.compat.v1.train.Saver``. Two checkpoints are shared by all tests:

* ``word``: one set of variables used by an aliased and a reduced-aliasing tower
  (both architectures have the same variables); its avgpool is VALID
  (14336-row dense kernel), so loading it also tests the padding inference;
* ``two_head``: the word + AudioSet network (SAME avgpool, 23040 rows); its
  ``fc_top_0`` (AudioSet, first in sorted task order) also feeds the
  AudioSet-only network.

Tolerance: per layer, ``max|keras - tf1| <= 1e-5 * max|tf1|`` (float32 round-off;
the observed error is below 1e-6 of the layer's scale).
"""

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io.wavfile
import tensorflow as tf

from tf1_reference import audio as ref
from model_metamers import convert_checkpoint, resources
from model_metamers.layers import hanning_kernel
from model_metamers.networks import build, list_networks
from model_metamers.networks.weights.checkpoints import CheckpointError
from model_metamers.networks.weights.tf1_audio_names import NameMapError, variable_map

REL_TOL = 1e-5

AUDIO_NETWORKS = ['word_aliased', 'word_reduced_aliasing', 'word_reduced_aliasing_random',
                  'audioset_reduced_aliasing', 'word_audioset_reduced_aliasing']

# Table S4 (SPEC §2)
S4 = {
    'aliased': {'cochleagram': 84400, 'conv_0': 913344, 'conv_1': 156672, 'conv_2': 78336,
                'conv_3': 156672, 'conv_4': 78336, 'fc_intermediate': 4096, 'logits': 794},
    'reduced': {'cochleagram': 84400, 'pool_0_0': 913344, 'pool_1_0': 156672, 'conv_2': 78336,
                'conv_3': 156672, 'conv_4': 78336, 'fc_intermediate': 4096, 'logits': 794},
}

# Keras stage -> tensor of the original TF1 graph (conv_<i> there is the pre-ReLU output)
STAGE_TO_TF1 = {'batch_norm_%d' % i: 'batch_norm_%d' % i for i in range(3)}
STAGE_TO_TF1.update({'conv_%d_pre_relu' % i: 'conv_%d' % i for i in range(5)})
STAGE_TO_TF1.update({'conv_%d' % i: 'relu_%d' % i for i in range(5)})
STAGE_TO_TF1.update({p: p for p in ['pool_0', 'pool_1', 'pool_0_0', 'pool_0_1', 'pool_1_0',
                                    'pool_1_1', 'avg_pool', 'flatten']})
STAGE_TO_TF1.update({'fc_intermediate_pre_relu': 'fc_intermediate',
                     'fc_intermediate': 'relu_fc_intermediate'})
HEAD_KEYS = {'word_aliased': {'logits': ref.WORD_KEY},
             'word_reduced_aliasing': {'logits': ref.WORD_KEY},
             'audioset_reduced_aliasing': {'logits': ref.AUDIOSET_KEY},
             'word_audioset_reduced_aliasing': {'logits': ref.WORD_KEY,
                                                'logits_word': ref.WORD_KEY,
                                                'logits_audioset': ref.AUDIOSET_KEY}}


def _fetch(tf1_nets):
    out = {name: tf1_nets[name] for name in STAGE_TO_TF1.values() if name in tf1_nets}
    out.update({'fc_top:' + key: tensor for key, tensor in tf1_nets['fc_top'].items()})
    return out


class Reference:
    """A saved TF1 checkpoint and the open session of the graph that produced it."""

    def __init__(self, directory, towers, n_classes, avgpool_padding, seed):
        self._runs = {}
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.cochleagram = tf.compat.v1.placeholder(tf.float32, [None, 211, 400, 1])
            self.towers = {name: _fetch(ref.brain_network(self.cochleagram, arch, n_classes,
                                                          avgpool_padding))
                           for name, arch in towers.items()}
            # variables of a real training checkpoint that the loader must ignore
            tf.compat.v1.train.get_or_create_global_step()
            tf.compat.v1.get_variable('brain_network/conv_0/kernel/Adam', [7, 14, 1, 96])
            self.session = tf.compat.v1.Session(graph=self.graph)
            ref.randomise_variables(self.session, np.random.default_rng(seed))
            self.prefix = tf.compat.v1.train.Saver().save(
                self.session, os.path.join(directory, 'model.ckpt'), write_meta_graph=False)

    def run(self, tower, cochleagram):
        """The tower's tensors for ``cochleagram`` (cached: the dense Hanning convs are slow)."""
        key = (id(self.towers[tower]), hash(cochleagram.tobytes()))
        if key not in self._runs:
            self._runs[key] = self.session.run(self.towers[tower], {self.cochleagram: cochleagram})
        return self._runs[key]


@pytest.fixture(scope='module')
def waveforms():
    """[2, 40000]: the demo speech (RMS 0.1) and white noise (RMS 0.1)."""
    sr, speech = scipy.io.wavfile.read(resources.DEMO_SOUND)
    assert sr == 20000
    speech = speech.astype(np.float64)[:40000]
    speech = np.pad(speech, (0, 40000 - len(speech))) - speech.mean()
    speech *= 0.1 / np.sqrt(np.mean(speech ** 2))
    noise = 0.1 * np.random.default_rng(3).standard_normal(40000)
    return np.stack([speech, noise]).astype(np.float32)


@pytest.fixture(scope='module')
def word_reference(tmp_path_factory):
    reference = Reference(str(tmp_path_factory.mktemp('word_ckpt')),
                          {'word_aliased': 'aliased', 'word_reduced_aliasing': 'reduced'},
                          {ref.WORD_KEY: 794}, 'VALID', seed=0)
    yield reference
    reference.session.close()


@pytest.fixture(scope='module')
def two_head_reference(tmp_path_factory):
    reference = Reference(str(tmp_path_factory.mktemp('two_head_ckpt')),
                          {'word_audioset_reduced_aliasing': 'reduced'},
                          {ref.WORD_KEY: 794, ref.AUDIOSET_KEY: 517}, 'SAME', seed=1)
    reference.towers['audioset_reduced_aliasing'] = reference.towers['word_audioset_reduced_aliasing']
    yield reference
    reference.session.close()


@pytest.fixture(scope='module')
def loaded(word_reference, two_head_reference, waveforms):
    """Networks built from the TF1 checkpoints, with all their stages for the speech (cached).

    Batch 1 keeps the forward passes cheap; batch independence (inference-mode
    batch norm) is tested on its own below.
    """
    cache = {}

    def get(name):
        if name not in cache:
            reference = two_head_reference if 'audioset' in name else word_reference
            net = build(name, weights=reference.prefix)
            stages = {k: v.numpy() for k, v in net.model(waveforms[:1], training=False).items()}
            cache[name] = (net, stages, reference)
        return cache[name]
    return get


@pytest.fixture(scope='module')
def random_nets():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = build(name, 'random', seed=0)
        return cache[name]
    return get


# ------------------------------------------------------------- architecture
@pytest.mark.parametrize('name', AUDIO_NETWORKS)
def test_table_s4_feature_counts(name, random_nets):
    net = random_nets(name)
    assert name in list_networks('audio')
    arch = 'aliased' if name == 'word_aliased' else 'reduced'
    expected = dict(S4[arch])
    if name == 'audioset_reduced_aliasing':
        expected['logits'] = 517
    assert net.metamer_layers == list(expected)
    assert {layer: net.stage_size(layer) for layer in net.metamer_layers} == expected
    assert net.resolve('visualization_input') == 'cochleagram'
    assert net.stage_size('visualization_input') == 84400
    assert net.input_shape == (40000,)
    assert net.stage_size('flatten') == 23040  # SAME avgpool for random weights
    assert net.representation_stage == 'cochleagram' and net.sample_rate == 20000
    assert set(net.relu_stages) == {'conv_0', 'conv_1', 'conv_2', 'conv_3', 'conv_4',
                                    'fc_intermediate'}
    assert len(net.class_names) == expected['logits']


def test_class_names_and_heads(random_nets):
    word = random_nets('word_reduced_aliasing')
    assert word.class_names[0] == '__nullSignal__' and 'human' in word.class_names
    audioset = random_nets('audioset_reduced_aliasing')
    assert len(set(audioset.class_names)) == 517
    two = random_nets('word_audioset_reduced_aliasing')
    assert two.stage_size('logits') == two.stage_size('logits_word') == 794
    assert two.stage_size('logits_audioset') == 517
    assert two.class_names == word.class_names
    assert two.info['class_names_by_task']['audioset'] == audioset.class_names


def test_seeded_random_initialisation(random_nets):
    first = random_nets('word_reduced_aliasing_random')
    again = build('word_reduced_aliasing_random', 'random', seed=0)
    other = build('word_reduced_aliasing_random', 'random', seed=1)
    for a, b, c in zip(first.model.weights, again.model.weights, other.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
        if a.path.endswith('kernel'):
            assert not np.array_equal(a.numpy(), c.numpy()), a.path


def test_batch_norm_stays_in_inference_mode(random_nets, waveforms):
    net = random_nets('word_aliased')
    sub = net.submodel(['conv_1'])
    with_training = sub(waveforms[:1], training=True)['conv_1'].numpy()
    np.testing.assert_array_equal(with_training, sub(waveforms[:1])['conv_1'].numpy())
    one_of_two = sub(waveforms)['conv_1'].numpy()[:1]
    np.testing.assert_allclose(with_training, one_of_two, rtol=0,
                               atol=REL_TOL * np.abs(one_of_two).max())


# ------------------------------------------------------------- TF1 round trip
@pytest.mark.parametrize('name', ['word_aliased', 'word_reduced_aliasing',
                                  'word_audioset_reduced_aliasing', 'audioset_reduced_aliasing'])
def test_tf1_checkpoint_round_trip(name, loaded):
    net, stages, reference = loaded(name)
    tf1 = reference.run(name, stages['cochleagram'])
    compared = []
    for stage, value in stages.items():
        key = ('fc_top:' + HEAD_KEYS[name][stage]) if stage in HEAD_KEYS[name] \
            else STAGE_TO_TF1.get(stage)
        if key is None:
            continue
        expected = tf1[key]
        assert value.shape == expected.shape, stage
        scale = np.abs(expected).max()
        assert scale > 0, stage
        np.testing.assert_allclose(value, expected, rtol=0, atol=REL_TOL * scale, err_msg=stage)
        compared.append(stage)
    assert set(compared) == set(net.stages) - {'cochleagram'}
    assert 0.2 < np.mean(stages['conv_4'] > 0) < 0.8  # the random network is not dead


def test_avgpool_padding_inferred_from_checkpoint(loaded, word_reference):
    net, stages, _ = loaded('word_reduced_aliasing')
    assert net.info['build_options']['avgpool_padding'] == 'VALID'
    assert net.stage_size('flatten') == 14336 and stages['avg_pool'].shape[1:] == (4, 7, 512)
    two, _, _ = loaded('word_audioset_reduced_aliasing')
    assert two.info['build_options']['avgpool_padding'] == 'SAME'
    with pytest.raises(CheckpointError, match='avgpool_padding was given as .SAME.'):
        build('word_aliased', weights=word_reference.prefix, avgpool_padding='SAME')


@pytest.mark.parametrize('name', ['word_aliased', 'word_reduced_aliasing'])
def test_relu_stages_and_modified_relu_forward(name, loaded):
    net, stages, _ = loaded(name)
    for stage, (pre,) in net.relu_stages.items():
        relu = tf.nn.relu(stages[pre]).numpy()
        assert relu.tobytes() == stages[stage].tobytes(), stage
        matched = net.matched_tensor({pre: tf.constant(stages[pre])}, stage).numpy()
        assert matched.tobytes() == stages[stage].tobytes(), stage


def test_submodel_from_cochleagram(loaded):
    net, stages, _ = loaded('word_reduced_aliasing')
    out = net.activations(stages['cochleagram'], ['pool_0_0', 'conv_3', 'logits'],
                          from_stage='visualization_input')
    for layer, value in out.items():
        np.testing.assert_allclose(value.numpy(), stages[layer], rtol=0,
                                   atol=1e-6 * np.abs(stages[layer]).max(), err_msg=layer)


# -------------------------------------------------------- conversion to .h5
@pytest.fixture(scope='module')
def converted(loaded, word_reference, tmp_path_factory):
    output = str(tmp_path_factory.mktemp('converted') / 'word_reduced_aliasing.weights.h5')
    path, _ = convert_checkpoint.convert('word_reduced_aliasing', word_reference.prefix, output)
    return path


def test_converted_weights_load_and_give_identical_activations(converted, loaded, waveforms):
    net, stages, _ = loaded('word_reduced_aliasing')
    with h5py.File(converted, 'r') as f:
        assert f.attrs['network'] == 'word_reduced_aliasing'
        assert json.loads(f.attrs['build_options'])['avgpool_padding'] == 'VALID'
    again = build('word_reduced_aliasing', weights=converted)
    assert again.info['build_options'] == net.info['build_options']
    out = again.model(waveforms[:1], training=False)
    for stage in ['pool_0_0', 'conv_2', 'flatten', 'fc_intermediate', 'logits']:
        np.testing.assert_array_equal(out[stage].numpy(), stages[stage], err_msg=stage)


def test_converted_weights_keep_hanning_normalisation(converted, loaded, tmp_path):
    """The stored build option is read back before building; normalising divides by the sum."""
    net, stages, _ = loaded('word_reduced_aliasing')
    normalised = str(tmp_path / 'normalised.weights.h5')
    shutil.copy(converted, normalised)
    with h5py.File(normalised, 'r+') as f:
        options = json.loads(f.attrs['build_options'])
        options['hanning_normalize'] = True
        f.attrs['build_options'] = json.dumps(options)
    net_n = build('word_reduced_aliasing', weights=normalised)
    assert net_n.info['build_options']['hanning_normalize'] is True
    pool = net_n.activations(stages['cochleagram'], ['pool_0_0'], from_stage='cochleagram')
    expected = stages['pool_0_0'] / hanning_kernel(12).sum()
    np.testing.assert_allclose(pool['pool_0_0'].numpy(), expected, rtol=0,
                               atol=1e-6 * np.abs(expected).max())


def test_untrained_network_loads_only_weights_files(converted, word_reference):
    with pytest.raises(CheckpointError, match='untrained architecture.*weights.h5'):
        build('word_reduced_aliasing_random', weights=word_reference.prefix)
    with pytest.raises(CheckpointError, match='holds weights of network word_reduced_aliasing'):
        build('word_aliased', weights=converted)
    net = build('word_reduced_aliasing_random', weights=converted)
    assert net.stage_size('flatten') == 14336


# ------------------------------------------------------------ naming errors
@pytest.fixture(scope='module')
def renamed_checkpoint(word_reference, tmp_path_factory):
    """The word checkpoint with batch_norm_1 stored as batch_normalization_1 (written by SaveV2)."""
    values = {name.replace('/batch_norm_1/', '/batch_normalization_1/'): value
              for name, value in _checkpoint_values(word_reference.prefix).items()}
    return _save_checkpoint(str(tmp_path_factory.mktemp('renamed') / 'model.ckpt'), values)


def _checkpoint_values(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def _save_checkpoint(prefix, values):
    """A V2 checkpoint of ``{name: array}`` written by the raw SaveV2 op; returns the prefix."""
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return prefix


def test_renamed_variable_error_lists_expected_and_available(renamed_checkpoint, tmp_path):
    output = str(tmp_path / 'never.weights.h5')
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint.convert('word_reduced_aliasing', renamed_checkpoint, output)
    message = str(error.value)
    assert 'expected checkpoint variables that are missing' in message
    assert 'batch_norm_1/gamma' in message and '<- brain_network/batch_norm_1/gamma' in message
    assert 'brain_network/batch_normalization_1/moving_variance (96,)' in message
    assert 'brain_network/conv_0/kernel (7, 14, 1, 96)' in message
    assert 'brain_network/batch_norm_0/gamma' not in message.split('missing:')[1].split(
        'variables in the checkpoint')[0]
    assert not os.path.exists(output) and os.listdir(tmp_path) == []


def test_renamed_variable_loads_with_name_map_override(renamed_checkpoint, loaded, tmp_path):
    net, stages, _ = loaded('word_reduced_aliasing')
    overrides = tmp_path / 'overrides.json'
    overrides.write_text(json.dumps({'batch_norm_1': 'brain_network/batch_normalization_1'}))
    again = build('word_reduced_aliasing', weights=renamed_checkpoint, name_map=str(overrides))
    out = again.activations(stages['cochleagram'], ['conv_1', 'logits'], from_stage='cochleagram')
    for layer, value in out.items():
        np.testing.assert_array_equal(value.numpy(), stages[layer], err_msg=layer)


@pytest.fixture(scope='module')
def extra_batch_norm_checkpoint(word_reference, tmp_path_factory):
    """The word checkpoint plus a fourth batch norm (brain_network/batch_norm_3/...) that the
    Keras model does not have, as a checkpoint of a network with one more layer would hold."""
    values = _checkpoint_values(word_reference.prefix)
    for var in ('gamma', 'beta', 'moving_mean', 'moving_variance'):
        values['brain_network/batch_norm_3/%s' % var] = np.ones(512, np.float32)
    return _save_checkpoint(str(tmp_path_factory.mktemp('extra_bn') / 'model.ckpt'), values)


def test_unused_network_variables_are_an_error(extra_batch_norm_checkpoint, tmp_path):
    output = str(tmp_path / 'never.weights.h5')
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint.convert('word_reduced_aliasing', extra_batch_norm_checkpoint, output)
    message = str(error.value)
    assert len(message.splitlines()) == 1, message
    assert '4 variable(s) of the network that the Keras model would not use' in message
    assert 'brain_network/batch_norm_3/moving_variance (512,)' in message
    assert '--name_map' in message and '--ignore_variables=brain_network/batch_norm_3/beta,' in message
    assert not os.path.exists(output)


def test_unused_variables_ignored_on_purpose_and_bookkeeping_reported(
        extra_batch_norm_checkpoint, loaded, word_reference):
    net, stages, _ = loaded('word_reduced_aliasing')
    # the shared checkpoint holds global_step and an Adam slot: skipped, said in one line
    report = net.info['weights_report']
    assert len(report.splitlines()) == 1
    assert 'training step: global_step' in report and 'optimiser slots: ' in report, report
    again = build('word_reduced_aliasing', weights=extra_batch_norm_checkpoint,
                  ignore_variables='brain_network/batch_norm_3')
    assert 'ignored on purpose: brain_network/batch_norm_3/beta' in again.info['weights_report']
    out = again.activations(stages['cochleagram'], ['logits'], from_stage='cochleagram')
    np.testing.assert_array_equal(out['logits'].numpy(), stages['logits'])


def test_name_map_overrides_and_errors(tmp_path):
    mapping = variable_map(('word', 'audioset'))
    assert mapping['fc_top_audioset/kernel'] == 'brain_network/fc_top_0/kernel'
    assert mapping['fc_top_word/bias'] == 'brain_network/fc_top_1/bias'
    assert variable_map(('word',))['fc_top_word/kernel'] == 'brain_network/fc_top_0/kernel'
    assert variable_map(('audioset',))['fc_top_audioset/kernel'] == 'brain_network/fc_top_0/kernel'
    assert mapping['batch_norm_2/moving_variance'] == 'brain_network/batch_norm_2/moving_variance'
    assert len(mapping) == 3 * 4 + 6 * 2 + 2 * 2
    custom = variable_map(('word',), {'conv_0': 'net/c0', 'conv_0/bias': 'net/b0'})
    assert custom['conv_0/kernel'] == 'net/c0/kernel' and custom['conv_0/bias'] == 'net/b0'
    with pytest.raises(NameMapError, match='conv_9 name no layer'):
        variable_map(('word',), {'conv_9': 'x'})
    bad = tmp_path / 'bad.json'
    bad.write_text('{"conv_0": ')
    with pytest.raises(NameMapError, match='not valid JSON'):
        variable_map(('word',), str(bad))
    with pytest.raises(NameMapError, match='cannot read name map file'):
        variable_map(('word',), str(tmp_path / 'missing.json'))
    with pytest.raises(NameMapError, match='object of strings'):
        variable_map(('word',), {'conv_0': 3})
    table = convert_checkpoint.name_map_table('word_audioset_reduced_aliasing',
                                              {'batch_norm_0': 'brain_network/bn'})
    assert 'fc_top_word/kernel' in table and 'brain_network/fc_top_1/kernel' in table
    assert 'brain_network/bn/gamma  [override]' in table


def test_bad_options_are_clear_errors():
    from model_metamers.networks.audio.audio_cnn import AudioNetworkOptionError
    with pytest.raises(AudioNetworkOptionError, match='avgpool_padding must be'):
        build('word_aliased', avgpool_padding='FULL')
    with pytest.raises(AudioNetworkOptionError, match='hanning_normalize must be'):
        build('word_reduced_aliasing', hanning_normalize='yes')
    with pytest.raises(CheckpointError, match='no weights at'):
        build('word_aliased', weights='/nonexistent/model.ckpt')
    with pytest.raises(AudioNetworkOptionError, match='envelope_impl must be one of'):
        build('word_aliased', envelope_impl='fast')


def test_envelope_impl_option_reaches_the_cochleagram(random_nets, waveforms):
    """``envelope_impl='full'`` gives the network the original's inverse FFTs; the default
    banded envelopes give the same network output to float32 round-off."""
    default = random_nets('word_reduced_aliasing')
    full = build('word_reduced_aliasing', 'random', seed=0, envelope_impl='full')
    graphs = [net.model.get_layer('cochleagram').graph for net in (default, full)]
    assert graphs[0]._banded is not None and graphs[1]._banded is None
    assert default.info['envelope_impl'] == 'banded' and full.info['envelope_impl'] == 'full'
    outputs = [net.model(waveforms[:1], training=False) for net in (default, full)]
    for stage in ('cochleagram', 'logits'):
        a, b = outputs[0][stage].numpy(), outputs[1][stage].numpy()
        assert not np.array_equal(a, b)  # two computations, not one
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * np.abs(b).max())


def test_convert_cli_reports_one_line_errors(tmp_path, word_reference):
    output = tmp_path / 'out.weights.h5'
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
               TF_CPP_MIN_LOG_LEVEL='3')
    not_a_checkpoint = tmp_path / 'sound.wav'
    not_a_checkpoint.write_bytes(b'RIFF')
    for checkpoint, out, expected in (
            (tmp_path / 'missing.ckpt', output, 'is not a TF checkpoint; give the prefix'),
            (not_a_checkpoint, output, 'is not a TF checkpoint; give the prefix')):
        result = subprocess.run(
            [sys.executable, '-m', 'model_metamers.convert_checkpoint', '--network=word_aliased',
             '--checkpoint=%s' % checkpoint, '--output=%s' % out],
            capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 1
        assert 'Traceback' not in result.stderr
        errors = [line for line in result.stderr.splitlines() if 'convert_checkpoint: error' in line]
        assert len(errors) == 1 and expected in errors[0], result.stderr
        assert 'model_metamers.fetch --network=word_aliased' in errors[0]
        assert not output.exists()
    # A real checkpoint but nowhere to write: refused before the network is built.
    with pytest.raises(convert_checkpoint.ConversionError, match='not a writable folder'):
        convert_checkpoint.convert('word_reduced_aliasing', word_reference.prefix,
                                   str(tmp_path / 'no' / 'such' / 'x.weights.h5'))
