"""VGG-19, Inception-V3, ResNet-101-V2 in Keras against the TF-Slim graphs (tf1_reference/slim.py).

For each network a slim graph gets random weights with non-trivial batch-norm
statistics, is saved as a real slim checkpoint (V1 single file for VGG and
ResNet, as the published tarballs; V2 for Inception), loaded by name into the
Keras model, and every slim end point is compared on the same two images
(a natural photo and uniform noise).

Tolerance: max |keras - slim| <= RTOL * max |slim| per end point, RTOL = 1e-4.
Observed worst cases: VGG-19 0 (bit-identical), Inception-V3 ~4e-6,
ResNet-101-V2 ~3e-5 (round-off accumulated over 100 layers; the two
frameworks group the batch-norm arithmetic differently).
"""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from model_metamers import convert_checkpoint, images, networks, resources
from model_metamers.networks.weights.checkpoints import CheckpointError

from tf1_reference import slim as slim_reference

RTOL = 1e-4

# Table S5 of the supplement (SPEC §3): features per metamer layer.
TABLE_S5 = {
    'vgg_19': {'conv1_2': 3211264, 'conv2_2': 1605632, 'conv3_4': 802816, 'conv4_4': 401408,
               'conv5_4': 100352, 'fc6': 4096, 'fc7': 4096, 'fc8': 1000},
    'resnet_v2_101': {'conv_1': 1440000, 'block_1': 369664, 'block_2': 184832,
                      'block_3': 102400, 'block_4': 204800, 'global': 2048, 'logits': 1001},
    'inception_v3': {'Conv2d_1a_3x3': 710432, 'Conv2d_3b_1x1': 426320,
                     'Conv2d_4a_3x3': 967872, 'Mixed_5d': 352800, 'Mixed_6e': 221952,
                     'Logits': 1001},
}
# Layers whose Table S5 count does not match slim at 299x299 (SPEC §3): the
# count must be that of the slim end point.
TABLE_S5_MISMATCH = {'inception_v3': ['Conv2d_2b_3x3', 'Mixed_7c']}
WRITE_VERSION = {'vgg_19': 'V1', 'inception_v3': 'V2', 'resnet_v2_101': 'V1'}


def _images(size, seed):
    rng = np.random.default_rng(seed)
    photo = images.load_image(resources.DEMO_IMAGES['airplane' if seed == 0 else 'pocketwatch'],
                              size)
    return np.stack([photo, rng.uniform(0, 1, (size, size, 3))]).astype(np.float32)


class Pair:
    """The slim reference and the Keras network loaded from its checkpoint, both run on ``x``."""

    def __init__(self, name, directory):
        size = slim_reference.IMAGE_SIZE[name]
        self.name = name
        self.x = _images(size, 0)
        self.ref = slim_reference.SlimReference(
            name, os.path.join(directory, 'model.ckpt'), calibration_images=_images(size, 1),
            write_version=WRITE_VERSION[name])
        self.ref_out = self.ref.run(self.x)
        self.net = networks.build(name, weights=self.ref.checkpoint)
        self.out = {k: v.numpy() for k, v in self.net.model(self.x).items()}


@pytest.fixture(scope='module', params=['vgg_19', 'inception_v3', 'resnet_v2_101'])
def pair(request, tmp_path_factory):
    p = Pair(request.param, str(tmp_path_factory.mktemp(request.param)))
    yield p
    p.ref.close()
    shutil.rmtree(os.path.dirname(p.ref.checkpoint), ignore_errors=True)


def _assert_close(actual, expected, what):
    assert actual.shape == expected.shape, '%s: shape %s, slim %s' % (what, actual.shape,
                                                                      expected.shape)
    scale = float(np.max(np.abs(expected)))
    err = float(np.max(np.abs(actual - expected)))
    assert scale > 0, '%s: the reference is all zeros, the comparison would be empty' % what
    assert err <= RTOL * scale, '%s: max |diff| %.3g > %.1g * max|slim| %.3g' % (
        what, err, RTOL, scale)


def test_every_slim_end_point_matches(pair):
    missing = sorted(set(pair.ref_out) - set(pair.net.stages))
    assert not missing, 'slim end points with no stage: %s' % missing
    for name, expected in pair.ref_out.items():
        _assert_close(pair.out[name], expected, '%s %s' % (pair.name, name))


def test_pre_relu_stages_are_slims_pre_activations(pair):
    """relu_stages lists the pre-activations slim's graph concatenates, in order, and only those."""
    ref_pre = {ep: pair.ref.pre_relu_tensors(ep) for ep in pair.ref.end_points}
    ref_pre = {ep: t for ep, t in ref_pre.items() if t}
    assert set(ref_pre) == set(pair.net.relu_stages) & set(pair.ref.end_points)
    values = pair.ref.run(pair.x, ref_pre)
    for ep, expected in values.items():
        stages = pair.net.relu_stages[ep]
        assert len(stages) == len(expected), ep
        for stage, ref_value in zip(stages, expected):
            _assert_close(pair.out[stage], ref_value, '%s pre-ReLU %s' % (ep, stage))


def test_matched_tensor_forward_equals_stage(pair):
    for layer in pair.net.metamer_layers:
        name = pair.net.resolve(layer)
        outs = {s: tf.constant(pair.out[s]) for s in pair.net.stages_for_matching(layer)}
        np.testing.assert_array_equal(pair.net.matched_tensor(outs, layer).numpy(), pair.out[name])


def test_table_s5_feature_counts(pair):
    net = pair.net
    expected = dict(TABLE_S5[pair.name])
    for layer in TABLE_S5_MISMATCH.get(pair.name, []):
        expected[layer] = int(np.prod(pair.ref_out[layer].shape[1:]))
    assert net.metamer_layers == [layer for layer in net.metamer_layers if layer in expected]
    assert {layer: net.stage_size(layer) for layer in net.metamer_layers} == expected


def test_metamer_layers_in_paper_order(pair):
    order = {'vgg_19': ['conv1_2', 'conv2_2', 'conv3_4', 'conv4_4', 'conv5_4', 'fc6', 'fc7', 'fc8'],
             'resnet_v2_101': ['conv_1', 'block_1', 'block_2', 'block_3', 'block_4', 'global',
                               'logits'],
             'inception_v3': ['Conv2d_1a_3x3', 'Conv2d_2b_3x3', 'Conv2d_3b_1x1', 'Conv2d_4a_3x3',
                              'Mixed_5d', 'Mixed_6e', 'Mixed_7c', 'Logits']}
    assert pair.net.metamer_layers == order[pair.name]


def test_relu_entries_of_metamer_layers(pair):
    """ReLU metamer layers have pre-activations; ResNet blocks, pooling and logits have none."""
    net = pair.net
    with_relu = {net.resolve(layer) for layer in net.metamer_layers} & set(net.relu_stages)
    expected = {'vgg_19': {'conv1_2', 'conv2_2', 'conv3_4', 'conv4_4', 'conv5_4', 'fc6', 'fc7'},
                'resnet_v2_101': set(),
                'inception_v3': {'Conv2d_1a_3x3', 'Conv2d_2b_3x3', 'Conv2d_3b_1x1',
                                 'Conv2d_4a_3x3', 'Mixed_5d', 'Mixed_6e', 'Mixed_7c'}}[pair.name]
    assert with_relu == {net.resolve(layer) for layer in expected}
    if pair.name == 'inception_v3':
        assert len(net.relu_stages['Mixed_7c']) == 6  # 1 + 2 + 2 + 1 convs in concat order
        assert 'Mixed_6a' not in net.relu_stages  # its third branch is a max-pool


def test_logits_classes_and_offset(pair):
    net = pair.net
    logits = pair.out[net.resolve(net.logits_stage)]
    n = {'vgg_19': 1000}.get(pair.name, 1001)
    assert logits.shape == (2, n) and len(net.class_names) == n
    offset = net.info['logit_offset']
    assert offset == n - 1000
    # ImageNet (ILSVRC-2012) class indices, written out: 0 tench, 1 goldfish, 409 analog clock,
    # 817 sports car, 999 toilet tissue (the first synonym of each WordNet name).
    for index, first_name in [(0, 'tench'), (1, 'goldfish'), (409, 'analog clock'), (817, 'sports car'),
                              (999, 'toilet tissue')]:
        assert net.class_names[offset + index].split(',')[0] == first_name
    if offset:
        assert net.class_names[0] == 'background'
    np.testing.assert_array_equal(net.classify(pair.x), np.argmax(pair.ref.run(pair.x, pair.ref.logits)
                                                                  .reshape(2, -1), axis=1))
    assert net.modality == 'image' and net.default_learning_rate == 0.001
    assert net.input_shape == (slim_reference.IMAGE_SIZE[pair.name],) * 2 + (3,)


# ------------------------------------------------------------ checkpoint errors
@pytest.fixture
def inception(pair, tmp_path):
    """The Inception-V3 pair (shared with the parity tests) for loading variations."""
    p = pair
    if p.name != 'inception_v3':
        pytest.fail('use @INCEPTION_ONLY on this test')
    yield {'ref': p.ref, 'dir': str(tmp_path), 'values': p.ref.values(), 'x': p.x,
           'logits': p.ref_out['Logits']}
    shutil.rmtree(str(tmp_path), ignore_errors=True)  # ~100 MB per variant checkpoint


# Runs a test with the module's Inception-V3 pair instead of building another.
INCEPTION_ONLY = pytest.mark.parametrize('pair', ['inception_v3'], indirect=True)


def _save_v2(prefix, values):
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return prefix


@INCEPTION_ONLY
def test_missing_and_unexpected_variables_listed_side_by_side(inception):
    values = dict(inception['values'])
    gone = 'InceptionV3/Mixed_6e/Branch_0/Conv2d_0a_1x1/weights'
    renamed = 'InceptionV3/Mixed_6e/Branch_0/Conv2d_0a_1x1/kernel'
    values[renamed] = values.pop(gone)
    prefix = _save_v2(os.path.join(inception['dir'], 'renamed', 'model.ckpt'), values)
    with pytest.raises(CheckpointError) as err:
        networks.build('inception_v3', weights=prefix)
    msg = str(err.value)
    assert '1 model variables missing, 1 unexpected' in msg.splitlines()[0]
    row = [line for line in msg.splitlines() if gone in line]
    assert len(row) == 1 and renamed in row[0], msg


@INCEPTION_ONLY
def test_missing_variable_alone_is_an_error(inception):
    values = dict(inception['values'])
    del values['InceptionV3/Logits/Conv2d_1c_1x1/biases']
    prefix = _save_v2(os.path.join(inception['dir'], 'missing', 'model.ckpt'), values)
    with pytest.raises(CheckpointError, match='1 model variables missing, 0 unexpected'):
        networks.build('inception_v3', weights=prefix)


@INCEPTION_ONLY
def test_non_model_variables_ignored_but_unknown_model_variables_rejected(inception):
    values = dict(inception['values'])
    values['InceptionV3/Logits/Conv2d_1c_1x1/biases/RMSProp'] = values[
        'InceptionV3/Logits/Conv2d_1c_1x1/biases']
    values['some_other_scope/x'] = np.zeros(3, np.float32)
    prefix = _save_v2(os.path.join(inception['dir'], 'extras', 'model.ckpt'), values)
    net = networks.build('inception_v3', weights=prefix)  # global_step, slots, other scopes
    _assert_close(net.logits(inception['x']).numpy(), inception['logits'], 'Logits')
    values['InceptionV3/Mixed_8a/weights'] = np.zeros(3, np.float32)
    prefix = _save_v2(os.path.join(inception['dir'], 'extra_model_var', 'model.ckpt'), values)
    with pytest.raises(CheckpointError, match='0 model variables missing, 1 unexpected'):
        networks.build('inception_v3', weights=prefix)


def test_published_bookkeeping_variables_are_skipped_and_reported(pair):
    """The model-zoo files hold global_step (all three) and, for VGG-19 (converted from Caffe),
    vgg_19/mean_rgb [3]: they load (the parity tests above use such files) and the load says
    in one line what it skipped."""
    report = pair.net.info.get('weights_report', '')
    assert len(report.splitlines()) == 1 and pair.ref.checkpoint in report, report
    assert 'training step: global_step' in report, report
    if pair.name == 'vgg_19':
        assert 'mean pixel: vgg_19/mean_rgb (3,)' in report, report
        assert 'skipped 2 training variable(s)' in report, report
    else:
        assert 'mean_rgb' not in report and 'skipped 1 training variable(s)' in report, report


@INCEPTION_ONLY
def test_moving_averages_are_used_only_when_asked(inception):
    values = dict(inception['values'])
    bias = 'InceptionV3/Logits/Conv2d_1c_1x1/biases'
    for name in [n for n in values if n.endswith(('/weights', '/biases'))]:
        values[name + '/ExponentialMovingAverage'] = values[name]
    values[bias + '/ExponentialMovingAverage'] = values[bias] + np.float32(1.0)
    prefix = _save_v2(os.path.join(inception['dir'], 'ema', 'model.ckpt'), values)
    plain = networks.build('inception_v3', weights=prefix)
    _assert_close(plain.logits(inception['x']).numpy(), inception['logits'], 'Logits (plain)')
    assert 'moving averages:' in plain.info['weights_report']
    ema = networks.build('inception_v3', weights=prefix, use_ema=True)
    # the logits bias is added last, so its shadow (+1) shifts every logit by exactly 1
    _assert_close(ema.logits(inception['x']).numpy() - 1.0, inception['logits'], 'Logits (EMA)')
    assert 'taken from their ExponentialMovingAverage shadows' in ema.info['weights_report']
    with pytest.raises(CheckpointError, match='no ExponentialMovingAverage shadows'):
        networks.build('inception_v3', weights=inception['ref'].checkpoint, use_ema=True)


@INCEPTION_ONLY
def test_aux_logits_can_be_left_out(inception):
    net = networks.build('inception_v3', weights=inception['ref'].checkpoint, aux_logits=False)
    assert 'AuxLogits' not in net.stages
    _assert_close(net.logits(inception['x']).numpy(), inception['logits'], 'Logits')


@INCEPTION_ONLY
def test_wrong_shape_and_unreadable_checkpoint(inception, tmp_path):
    values = dict(inception['values'])
    values['InceptionV3/Logits/Conv2d_1c_1x1/biases'] = np.zeros(1000, np.float32)
    prefix = _save_v2(str(tmp_path / 'shape' / 'model.ckpt'), values)
    with pytest.raises(CheckpointError, match='has shape'):
        networks.build('inception_v3', weights=prefix)
    junk = tmp_path / 'junk.ckpt.index'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot read checkpoint') as err:
        networks.build('inception_v3', weights=str(tmp_path / 'junk.ckpt'))
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(CheckpointError, match='fetch'):
        networks.build('inception_v3', weights=str(tmp_path / 'nothing_here.ckpt'))


@INCEPTION_ONLY
def test_default_weights_and_converted_h5(inception, tmp_path, monkeypatch):
    d = tmp_path / 'ckpts'
    d.mkdir()
    src = inception['ref'].checkpoint
    for suffix in ('.index', '.data-00000-of-00001'):
        shutil.copy(src + suffix, str(d / ('inception_v3.ckpt' + suffix)))
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', str(d))
    net = networks.build('inception_v3', weights='default')
    assert net.info['weights'] == str(d / 'inception_v3.ckpt')
    _assert_close(net.logits(inception['x']).numpy(), inception['logits'], 'Logits (default)')
    # the shared converter (published checkpoint -> by-name .weights.h5) accepts the slim nets
    h5, _ = convert_checkpoint.convert('inception_v3', net.info['weights'],
                                       output=str(tmp_path / 'inception_v3.weights.h5'))
    again = networks.build('inception_v3', weights=h5)
    np.testing.assert_array_equal(again.logits(inception['x']).numpy(),
                                  net.logits(inception['x']).numpy())


@pytest.mark.parametrize('pair', ['resnet_v2_101'], indirect=True)
def test_resnet_uses_tf1_fused_batch_norm_epsilon(pair):
    import keras
    eps = {layer.epsilon for layer in pair.net.model.layers
           if isinstance(layer, keras.layers.BatchNormalization)}
    assert eps == {slim_reference.TF1_RESNET_EPSILON}


def test_random_weights_are_seeded():
    a = networks.build('inception_v3', seed=3)
    b = networks.build('inception_v3', seed=3)
    c = networks.build('inception_v3', seed=4)
    k = 'InceptionV3.Mixed_5b.Branch_1.Conv2d_0b_5x5'
    wa, wb, wc = (n.model.get_layer(k).kernel.numpy() for n in (a, b, c))
    np.testing.assert_array_equal(wa, wb)
    assert not np.allclose(wa, wc)
    # He-normal scale, as slim's variance_scaling_initializer
    assert 0.5 < wa.std() / np.sqrt(2.0 / (5 * 5 * 48)) < 1.5
