"""VGGish: front end against a numpy re-implementation of the release's mel_features pipeline,
network against the TF-Slim definition of vggish_slim.py run in a tf.compat.v1 graph."""

import os
import sys

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf
from scipy.io import wavfile

from model_metamers import resources
from model_metamers.networks import build
from model_metamers.networks.weights import checkpoints
from model_metamers.networks.speech import vggish
from model_metamers.networks.speech import vggish_frontend as vf
from model_metamers.networks.speech.resample import ResampleError, fft_resample

# Measured max |difference| of log-mel between the float32 TF graph and the float64
# numpy reference: 1e-6 (noise) to 4e-5 (speech, quiet bands) at 16 kHz input; 1e-4 from
# 20 kHz input, where the float32 40000-point FFT resampling adds absolute round-off that
# the log magnifies in quiet bands.
LOG_MEL_ATOL = 1e-4
LOG_MEL_ATOL_RESAMPLED = 3e-4


# ---------------------------------------------------------------- numpy reference
def _ref_hz_to_mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)


def _ref_mel_matrix(n_bands=64, n_bins=257, sr=16000, lo=125.0, hi=7500.0):
    """Written from the documented algorithm, one band at a time (loops, not vectorised)."""
    bin_hz = np.linspace(0.0, sr / 2.0, n_bins)
    edges = np.linspace(_ref_hz_to_mel(lo), _ref_hz_to_mel(hi), n_bands + 2)
    out = np.zeros((n_bins, n_bands))
    for band in range(n_bands):
        left, centre, right = edges[band], edges[band + 1], edges[band + 2]
        for k in range(1, n_bins):   # DC (k = 0) is always excluded
            m = _ref_hz_to_mel(bin_hz[k])
            if left < m <= centre:
                out[k, band] = (m - left) / (centre - left)
            elif centre < m < right:
                out[k, band] = (right - m) / (right - centre)
    return out


def _ref_log_mel_examples(x16k):
    """One 16 kHz waveform -> [n_examples, 96, 64] float64, as mel_features + vggish_input."""
    x16k = np.asarray(x16k, np.float64)
    n_frames = 1 + (len(x16k) - 400) // 160
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.stack([x16k[i * 160:i * 160 + 400] * window for i in range(n_frames)])
    magnitude = np.abs(np.fft.rfft(frames, 512))
    log_mel = np.log(magnitude @ _ref_mel_matrix() + 0.01)
    n_examples = n_frames // 96
    return np.stack([log_mel[e * 96:(e + 1) * 96] for e in range(n_examples)])


def _demo_sound():
    sr, x = wavfile.read(resources.DEMO_SOUND)
    assert sr == 20000 and x.shape == (40000,)
    x = x.astype(np.float64) - x.mean()
    return (0.1 * x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def random_net():
    return build('vggish', weights='random', seed=0)


# ---------------------------------------------------------------- front end
def test_mel_matrix_matches_reference():
    np.testing.assert_allclose(vf.mel_weight_matrix(), _ref_mel_matrix(), rtol=0, atol=1e-12)
    assert np.all(vf.mel_weight_matrix()[0] == 0)


def test_log_mel_at_16k_matches_numpy_reference():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.zeros(1600), 0.1 * rng.standard_normal(30400)]).astype(np.float32)
    speech = scipy.signal.resample(_demo_sound().astype(np.float64), 32000).astype(np.float32)
    batch = np.stack([x, speech])
    ours = vf.log_mel_examples(batch).numpy()
    assert ours.shape == (2, 2, 96, 64)
    for got, wave in zip(ours, batch):
        np.testing.assert_allclose(got, _ref_log_mel_examples(wave), rtol=0, atol=LOG_MEL_ATOL)
    # Silence gives log(0.01) exactly where no energy reaches a band.
    np.testing.assert_allclose(ours[0, 0, :5], np.log(0.01), atol=1e-6)


def test_resampler_matches_scipy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 40000))
    got = fft_resample(x.astype(np.float32), 32000).numpy()
    want = scipy.signal.resample(x, 32000, axis=-1)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())
    with pytest.raises(ResampleError, match='whole number'):
        vf.VGGishLogMel(sample_rate=20000).compute_output_shape((None, 40001))


def test_network_log_mel_from_20k_waveform(random_net):
    x = _demo_sound()
    got = random_net.activations(x[None], ['log_mel'])['log_mel'].numpy()
    assert got.shape == (1, 2, 96, 64, 1)
    want = _ref_log_mel_examples(scipy.signal.resample(x.astype(np.float64), 32000))
    np.testing.assert_allclose(got[0, ..., 0], want, rtol=0, atol=LOG_MEL_ATOL_RESAMPLED)


def test_too_short_input_is_a_clear_error():
    with pytest.raises(vf.VGGishInputError, match='longer sound'):
        vf.log_mel_examples(tf.zeros([1, 8000]))


# ---------------------------------------------------------------- network vs TF-Slim
def _slim():
    import tf_keras
    import tf_keras.src.legacy_tf_layers as legacy
    sys.modules.setdefault('tf_keras.legacy_tf_layers', legacy)
    assert tf_keras
    import tf_slim
    return tf_slim


def _slim_vggish(features):
    """vggish_slim.define_vggish_slim, written from the documented architecture."""
    slim = _slim()
    tf1 = tf.compat.v1
    end_points = {}
    # Weights scaled so that activations stay O(1) through 8 layers (the
    # release's N(0, 0.01) initialisation would make every layer ~0).
    init = tf1.variance_scaling_initializer(scale=2.0, mode='fan_in', distribution='normal', seed=3)
    bias_init = tf1.random_normal_initializer(stddev=0.1, seed=4)
    with slim.arg_scope([slim.conv2d, slim.fully_connected], weights_initializer=init,
                        biases_initializer=bias_init, activation_fn=tf.nn.relu, trainable=False), \
            slim.arg_scope([slim.conv2d], kernel_size=[3, 3], stride=1, padding='SAME'), \
            slim.arg_scope([slim.max_pool2d], kernel_size=[2, 2], stride=2, padding='SAME'), \
            tf1.variable_scope('vggish'):
        net = tf.reshape(features, [-1, 96, 64, 1])
        for name, units in (('conv1', 64), ('pool1', None), ('conv2', 128), ('pool2', None),
                            ('conv3', 256), ('pool3', None), ('conv4', 512), ('pool4', None)):
            if units is None:
                net = end_points[name] = slim.max_pool2d(net, scope=name)
            elif name in ('conv1', 'conv2'):
                net = end_points[name] = slim.conv2d(net, units, scope=name)
            else:
                net = slim.repeat(net, 2, slim.conv2d, units, scope=name)
                graph = tf1.get_default_graph()
                for i in (1, 2):
                    end_points['%s_%d' % (name, i)] = graph.get_tensor_by_name(
                        'vggish/%s/%s_%d/Relu:0' % (name, name, i))
        net = slim.flatten(net)
        net = slim.repeat(net, 2, slim.fully_connected, 4096, scope='fc1')
        graph = tf1.get_default_graph()
        for i in (1, 2):
            end_points['fc1_%d' % i] = graph.get_tensor_by_name('vggish/fc1/fc1_%d/Relu:0' % i)
        end_points['embedding'] = slim.fully_connected(net, 128, scope='fc2', activation_fn=None)
    return end_points


@pytest.fixture(scope='module')
def slim_checkpoint(tmp_path_factory, random_net):
    """A V1 single-file checkpoint (the release's format) and the slim graph's end points."""
    x = _demo_sound()
    features = random_net.activations(x[None], ['log_mel'])['log_mel'].numpy()[0, ..., 0]
    path = str(tmp_path_factory.mktemp('vggish') / 'vggish_model.ckpt')
    graph = tf.Graph()
    with graph.as_default():
        placeholder = tf.compat.v1.placeholder(tf.float32, [None, 96, 64], name='input_features')
        end_points = _slim_vggish(placeholder)
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            values = sess.run(end_points, {placeholder: features})
            saver.save(sess, path, write_meta_graph=False)
    return path, features, values


def test_slim_checkpoint_is_v1_single_file(slim_checkpoint):
    path = slim_checkpoint[0]
    assert os.path.isfile(path) and not os.path.exists(path + '.index')


@pytest.fixture(scope='module')
def converted(slim_checkpoint, tmp_path_factory):
    """The project's converter run on the V1 checkpoint: (output .weights.h5, network it built)."""
    from model_metamers import convert_checkpoint
    output = str(tmp_path_factory.mktemp('converted') / 'vggish.weights.h5')
    return convert_checkpoint.convert('vggish', slim_checkpoint[0], output=output)


def test_every_layer_matches_slim(slim_checkpoint, converted):
    _, features, reference = slim_checkpoint
    net = converted[1]   # built from the V1 checkpoint by name
    assert net.info['weights_format'] == 'tf_checkpoint_v1'
    stages = net.activations(features[None, ..., None], list(reference), from_stage='log_mel')
    for name, want in reference.items():
        got = stages[name].numpy()
        assert got.shape == (1, 2) + want.shape[1:], name
        got = got.reshape(want.shape)
        scale = np.abs(want).max()
        assert scale > 1e-3, name   # the comparison is not trivially 0 == 0
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * scale, err_msg=name)


def test_converted_weights_file_loads(slim_checkpoint, converted):
    _, features, reference = slim_checkpoint
    net = build('vggish', weights=converted[0])
    assert net.info['weights_format'] == 'weights_h5'
    got = net.activations(features[None, ..., None], ['embedding'], from_stage='log_mel')
    want = reference['embedding']
    np.testing.assert_allclose(got['embedding'].numpy().reshape(want.shape), want, rtol=0,
                               atol=2e-5 * np.abs(want).max())


def test_name_map_overrides(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match='valid keys: conv1/kernel'):
        build('vggish', name_map={'conv9/kernel': 'x'})
    bad = tmp_path / 'map.json'
    bad.write_text('{not json')
    with pytest.raises(checkpoints.CheckpointError, match='cannot read name map'):
        build('vggish', name_map=str(bad))


def test_checkpoint_mismatch_lists_names(tmp_path):
    graph = tf.Graph()
    path = str(tmp_path / 'partial')
    with graph.as_default():
        tf.compat.v1.get_variable('vggish/conv1/weights', [3, 3, 1, 64])
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(sess, path, write_meta_graph=False)
    with pytest.raises(checkpoints.CheckpointError, match='vggish/fc1/fc1_1/weights'):
        build('vggish', weights=path)



def test_bad_weights_paths_fail_before_building(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match='no weights at'):
        build('vggish', weights=str(tmp_path / 'missing.ckpt'))
    garbage = tmp_path / 'garbage.ckpt'
    garbage.write_text('not a checkpoint')
    with pytest.raises(checkpoints.CheckpointError, match='not a TF checkpoint'):
        build('vggish', weights=str(garbage))


# ---------------------------------------------------------------- network contract
def test_layers_shapes_and_settings(random_net):
    # vggish_slim.py's layers, input side first (scopes dropped: conv3/conv3_1 -> conv3_1).
    assert random_net.metamer_layers == ['log_mel', 'conv1', 'pool1', 'conv2', 'pool2', 'conv3_1', 'conv3_2',
                                         'pool3', 'conv4_1', 'conv4_2', 'pool4', 'fc1_1', 'fc1_2', 'embedding']
    counts = {layer: random_net.stage_size(layer) for layer in random_net.metamer_layers}
    # Two examples of 96 frames x 64 bands; each pool halves both sizes.
    expected = {'log_mel': 2 * 96 * 64, 'conv1': 2 * 96 * 64 * 64, 'pool1': 2 * 48 * 32 * 64,
                'conv2': 2 * 48 * 32 * 128, 'pool2': 2 * 24 * 16 * 128,
                'conv3_1': 2 * 24 * 16 * 256, 'conv3_2': 2 * 24 * 16 * 256,
                'pool3': 2 * 12 * 8 * 256, 'conv4_1': 2 * 12 * 8 * 512,
                'conv4_2': 2 * 12 * 8 * 512, 'pool4': 2 * 6 * 4 * 512,
                'fc1_1': 2 * 4096, 'fc1_2': 2 * 4096, 'embedding': 2 * 128}
    assert counts == expected
    assert random_net.default_learning_rate == 0.01
    assert random_net.logits_stage == 'embedding' and random_net.class_names == []
    assert random_net.info['has_classes'] is False and random_net.representation_stage is None
    assert random_net.resolve('conv3/conv3_1') == 'conv3_1'
    assert random_net.resolve('vggish/fc1/fc1_2') == 'fc1_2'
    assert random_net.resolve('fc2') == 'embedding'
    assert set(random_net.relu_stages) == {'conv1', 'conv2', 'conv3_1', 'conv3_2', 'conv4_1',
                                           'conv4_2', 'fc1_1', 'fc1_2'}


def test_relu_stages_are_relu_of_their_preactivations(random_net):
    x = _demo_sound()[None]
    names = ['conv2', 'conv2_preact', 'fc1_1', 'fc1_1_preact']
    out = random_net.activations(x, names)
    for stage in ('conv2', 'fc1_1'):
        np.testing.assert_array_equal(out[stage].numpy(),
                                      tf.nn.relu(out[stage + '_preact']).numpy())


def test_gradient_from_waveform_is_finite_with_silence(random_net):
    x = np.concatenate([np.zeros(8000, np.float32), _demo_sound()[8000:]])[None]
    xv = tf.Variable(x)
    model = random_net.submodel(random_net.stages_for_matching('conv1'))
    with tf.GradientTape() as tape:
        out = model(xv)
        loss = tf.reduce_sum(random_net.matched_tensor(out, 'conv1'))
    grad = tape.gradient(loss, xv).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


# ---------------------------------------------------------------- post-processing
def test_postprocess_quantises_as_documented():
    identity = (np.eye(128), np.zeros(128))
    emb = np.zeros((1, 2, 128))
    emb[0, 0, :6] = [-3.0, -2.0, 0.0, 1.0, 2.0, 3.0]
    out = vggish.postprocess_embeddings(emb, identity)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 128)
    # (clip(e, -2, 2) + 2) * 255 / 4, truncated: -3 -> 0, 0 -> 127 (127.5), 1 -> 191 (191.25).
    np.testing.assert_array_equal(out[0, 0, :6], [0, 0, 127, 191, 255, 255])
    # The PCA: a permutation matrix and a mean shift.
    perm = np.roll(np.eye(128), 1, axis=0)
    shifted = vggish.postprocess_embeddings(emb + 1.0, (perm, np.ones(128)))
    np.testing.assert_array_equal(shifted[0, 0], np.roll(out[0, 0], 1))


def test_pca_params_errors(tmp_path):
    with pytest.raises(vggish.PCAParamsError, match='download'):
        vggish.load_pca_params(str(tmp_path / 'nope.npz'))
    bad = tmp_path / 'bad.npz'
    np.savez(bad, pca_eigen_vectors=np.eye(3), pca_means=np.zeros(3))
    with pytest.raises(vggish.PCAParamsError, match='expected'):
        vggish.load_pca_params(str(bad))
    good = tmp_path / 'good.npz'
    np.savez(good, pca_eigen_vectors=np.eye(128), pca_means=np.zeros((128, 1)))
    vectors, means = vggish.load_pca_params(str(good))
    assert vectors.shape == (128, 128) and means.shape == (128,)
