"""DeepSpeech 0.5.1: the differentiable MFCC against TF's AudioSpectrogram/Mfcc ops (the ops the
release used), the network against the release's create_model rebuilt in a tf.compat.v1 graph
around the BlockLSTM op that LSTMBlockFusedCell runs, from a checkpoint in the release's layout."""

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf
from scipy.io import wavfile

from model_metamers import resources
from model_metamers.networks import build
from model_metamers.networks.weights import checkpoints
from model_metamers.networks.speech import deepspeech as ds
from model_metamers.networks.speech import deepspeech_frontend as df

# Measured max |MFCC difference| to the ops (|MFCC| up to ~30): 1e-5 (speech) to 5e-5
# (noise after silence) at 16 kHz input: the log of small filterbank sums magnifies the
# float32 round-off of our FFT (the ops work in double). From 20 kHz input (float32 FFT
# resampling, reference: scipy.signal.resample in double) 1.2e-4.
MFCC_ATOL = 2e-4
MFCC_ATOL_RESAMPLED = 5e-4


def _demo_sound():
    sr, x = wavfile.read(resources.DEMO_SOUND)
    assert sr == 20000 and x.shape == (40000,)
    x = x.astype(np.float64) - x.mean()
    return (0.1 * x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def _op_mfcc(x16k, window=512, stride=320, **mfcc_kwargs):
    """The release's samples_to_mfccs: AudioSpectrogram + Mfcc on one 16 kHz waveform."""
    kwargs = dict(upper_frequency_limit=4000.0, lower_frequency_limit=20.0,
                  filterbank_channel_count=40, dct_coefficient_count=26)
    kwargs.update(mfcc_kwargs)
    spectrogram = tf.raw_ops.AudioSpectrogram(input=np.asarray(x16k, np.float32)[:, None],
                                              window_size=window, stride=stride,
                                              magnitude_squared=True)
    return tf.raw_ops.Mfcc(spectrogram=spectrogram, sample_rate=16000, **kwargs).numpy()[0]


# ---------------------------------------------------------------- front end
def test_mfcc_matches_audio_ops():
    rng = np.random.default_rng(0)
    noise = np.concatenate([np.zeros(3200), 0.1 * rng.standard_normal(28800)]).astype(np.float32)
    speech = scipy.signal.resample(_demo_sound().astype(np.float64), 32000).astype(np.float32)
    ours = df.mfcc(np.stack([noise, speech])).numpy()
    assert ours.shape == (2, 99, 26)
    for got, wave in zip(ours, (noise, speech)):
        want = _op_mfcc(wave)
        assert np.abs(want).max() > 1
        np.testing.assert_allclose(got, want, rtol=0, atol=MFCC_ATOL)


def test_mfcc_options_are_honoured():
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    config = df.MFCCConfig(window_ms=25, step_ms=10, n_input=13, filterbank_channels=32,
                           lower_frequency_limit=60.0, upper_frequency_limit=7600.0)
    assert (config.window_samples, config.step_samples, config.fft_length) == (400, 160, 512)
    got = df.mfcc(x[None], config).numpy()[0]
    want = _op_mfcc(x, window=400, stride=160, upper_frequency_limit=7600.0,
                    lower_frequency_limit=60.0, filterbank_channel_count=32,
                    dct_coefficient_count=13)
    assert got.shape == want.shape == (98, 13)
    np.testing.assert_allclose(got, want, rtol=0, atol=MFCC_ATOL)


def test_overlapping_windows_match_release_conv1d():
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((2, 30, 26)).astype(np.float32)
    eye = np.eye(19 * 26).reshape(19, 26, 19 * 26).astype(np.float32)
    want = tf.nn.conv1d(feats, eye, stride=1, padding='SAME').numpy()
    np.testing.assert_array_equal(df.overlapping_windows(feats).numpy(), want)


def test_bad_front_end_settings_are_clear_errors():
    with pytest.raises(df.DeepSpeechInputError, match='coefficients'):
        df.MFCCConfig(n_input=50)
    with pytest.raises(df.DeepSpeechInputError, match='at least 512 samples'):
        df.mfcc(tf.zeros([1, 100]))


# ---------------------------------------------------------------- CTC
# DeepSpeech's data/alphabet.txt (releases 0.4.1 and 0.5.1): space, a-z, apostrophe; the CTC blank
# is the last of the 29 logits.
RELEASE_ALPHABET = " abcdefghijklmnopqrstuvwxyz'"


def _tf_greedy_transcripts(logits):
    """Transcripts of ``[batch, time, 29]`` logits by TensorFlow's own greedy CTC decoder."""
    logits = np.asarray(logits, np.float32)
    decoded, _ = tf.nn.ctc_greedy_decoder(np.transpose(logits, [1, 0, 2]),
                                          np.full([len(logits)], logits.shape[1], np.int32),
                                          merge_repeated=True)
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    return [''.join(RELEASE_ALPHABET[k] for k in row if k >= 0) for row in dense]


def test_greedy_transcript_by_hand():
    labels = [8, 8, 28, 5, 12, 12, 28, 12, 15, 28, 0, 28, 27, 19]   # "hel" "lo" " " "'s"
    logits = np.full((len(labels), 29), -5.0)
    logits[np.arange(len(labels)), labels] = 5.0
    assert ds.greedy_ctc_transcript(logits) == "hello 's"
    assert ds.greedy_ctc_transcript(np.stack([logits, logits])) == ["hello 's"] * 2
    with pytest.raises(ValueError, match='29'):
        ds.greedy_ctc_transcript(np.zeros((5, 10)))


def test_greedy_transcript_matches_tf_decoder():
    rng = np.random.default_rng(3)
    # Few distinct classes so that repeats and blanks occur often.
    logits = rng.standard_normal((4, 60, 29)).astype(np.float32)
    logits[..., [0, 1, 28]] += 2.5
    want = _tf_greedy_transcripts(logits)
    assert ds.greedy_ctc_transcript(logits) == want
    assert all(len(w) > 3 for w in want)


# ---------------------------------------------------------------- checkpoint and network
RELEASE_SHAPES = {
    'layer_1/weights': (494, 2048), 'layer_1/bias': (2048,),
    'layer_2/weights': (2048, 2048), 'layer_2/bias': (2048,),
    'layer_3/weights': (2048, 2048), 'layer_3/bias': (2048,),
    'lstm_fused_cell/kernel': (4096, 8192), 'lstm_fused_cell/bias': (8192,),
    'layer_5/weights': (2048, 2048), 'layer_5/bias': (2048,),
    'layer_6/weights': (2048, 29), 'layer_6/bias': (29,),
}


def _release_graph(features):
    """DeepSpeech.py create_model (0.5.1, inference: no dropout) in TF1 ops, on MFCCs
    [batch, time, 26]. The LSTM is the BlockLSTM op that LSTMBlockFusedCell calls."""
    tf1 = tf.compat.v1

    def var(name):
        # Glorot uniform weights (the release's initialiser), non-zero biases; a distinct
        # seed per variable so that layers of the same shape differ.
        seed = sorted(RELEASE_SHAPES).index(name) + 10
        init = (tf1.random_normal_initializer(stddev=0.1, seed=seed) if name.endswith('bias')
                else tf1.glorot_uniform_initializer(seed=seed))
        return tf1.get_variable(name, RELEASE_SHAPES[name], initializer=init)

    end_points = {}
    batch = tf.shape(features)[0]
    eye = np.eye(19 * 26).reshape(19, 26, 19 * 26).astype(np.float32)
    x = tf.nn.conv1d(features, eye, stride=1, padding='SAME')
    x = tf.reshape(tf.transpose(tf.reshape(x, [batch, -1, 19, 26]), [1, 0, 2, 3]), [-1, 494])

    def dense(name, x, relu=True):
        out = tf.nn.bias_add(tf.matmul(x, var(name + '/weights')), var(name + '/bias'))
        return tf.minimum(tf.nn.relu(out), 20.0) if relu else out

    for name in ('layer_1', 'layer_2', 'layer_3'):
        x = end_points[name] = dense(name, x)
    x = tf.reshape(x, [-1, batch, 2048])
    kernel, bias = var('lstm_fused_cell/kernel'), var('lstm_fused_cell/bias')
    zeros = tf.zeros([batch, 2048])
    outputs = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64), x=x, cs_prev=zeros, h_prev=zeros,
        w=kernel, wci=tf.zeros([2048]), wcf=tf.zeros([2048]), wco=tf.zeros([2048]), b=bias,
        forget_bias=1.0, cell_clip=-1.0, use_peephole=False)
    x = end_points['rnn_output'] = tf.reshape(outputs[6], [-1, 2048])
    x = end_points['layer_5'] = dense('layer_5', x)
    end_points['logits'] = dense('layer_6', x, relu=False)
    # Back to batch-major [batch, time, n] for comparison.
    return {k: tf.transpose(tf.reshape(v, [-1, batch, v.shape[-1]]), [1, 0, 2])
            for k, v in end_points.items()}


@pytest.fixture(scope='module')
def release_checkpoint(tmp_path_factory):
    """A checkpoint folder in the release layout (with Adam slots and global_step, as a
    training checkpoint has), and the release graph's layers for the demo sound's MFCCs."""
    x16k = scipy.signal.resample(_demo_sound().astype(np.float64), 32000).astype(np.float32)
    mfccs = _op_mfcc(x16k)[None]
    folder = tmp_path_factory.mktemp('deepspeech-0.5.1-checkpoint')
    graph = tf.Graph()
    with graph.as_default():
        tf1 = tf.compat.v1
        features = tf1.placeholder(tf.float32, [None, None, 26])
        end_points = _release_graph(features)
        for name in ('layer_1/bias/Adam', 'layer_1/bias/Adam_1'):
            tf1.get_variable(name, initializer=np.zeros(2048, np.float32))
        tf1.train.get_or_create_global_step()
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            values = sess.run(end_points, {features: mfccs})
            weights = {v.op.name: sess.run(v) for v in tf1.global_variables()}
            tf1.train.Saver().save(sess, str(folder / 'best_dev'), global_step=1234,
                                   write_meta_graph=False)
    return str(folder), mfccs, values, weights


@pytest.fixture(scope='module')
def loaded_net(release_checkpoint):
    return build('deepspeech', weights=release_checkpoint[0])


def test_checkpoint_round_trip(release_checkpoint, loaded_net):
    saved = release_checkpoint[3]
    variables = {('%s/%s' % (layer.name, w.name.split('/')[-1].split(':')[0])): w
                 for layer in loaded_net.model.layers for w in layer.weights}
    # Release variable -> Keras weight, written out (release names from DeepSpeech.py 0.5.1).
    keras_of = {'lstm_fused_cell/kernel': 'lstm_fused_cell/kernel', 'lstm_fused_cell/bias': 'lstm_fused_cell/bias'}
    for n in (1, 2, 3, 5, 6):
        keras_of['layer_%d/weights' % n] = 'layer_%d/kernel' % n
        keras_of['layer_%d/bias' % n] = 'layer_%d/bias' % n
    assert set(keras_of) == set(RELEASE_SHAPES)
    assert set(variables) == set(keras_of.values())
    assert not np.array_equal(saved['layer_2/weights'], saved['layer_3/weights'])
    for ckpt_name, keras_name in keras_of.items():
        assert saved[ckpt_name].shape == RELEASE_SHAPES[ckpt_name]
        np.testing.assert_array_equal(variables[keras_name].numpy(), saved[ckpt_name])
    assert loaded_net.info['weights_format'] == 'tf_checkpoint'
    assert loaded_net.info['release'] == '0.5.1'                 # detected from layer_1/weights
    assert loaded_net.info['mfcc']['filterbank_channels'] == 40  # the Mfcc op's front end


def test_every_layer_matches_release_graph(release_checkpoint, loaded_net):
    _, mfccs, reference, _ = release_checkpoint
    got = loaded_net.activations(mfccs, list(reference), from_stage='mfcc')
    for name, want in reference.items():
        scale = np.abs(want).max()
        assert scale > 0.1, name
        np.testing.assert_allclose(got[name].numpy(), want, rtol=0, atol=1e-4 * scale,
                                   err_msg=name)


def test_network_mfcc_from_20k_waveform(loaded_net):
    x = _demo_sound()
    got = loaded_net.activations(x[None], ['mfcc'])['mfcc'].numpy()[0]
    want = _op_mfcc(scipy.signal.resample(x.astype(np.float64), 32000))
    np.testing.assert_allclose(got, want, rtol=0, atol=MFCC_ATOL_RESAMPLED)


def test_transcribe_uses_logits(loaded_net):
    x = _demo_sound()[None]
    logits = loaded_net.logits(x).numpy()
    assert logits.shape == (1, 99, 29)
    assert loaded_net.transcribe(x) == _tf_greedy_transcripts(logits)


def test_validation_compares_transcripts(loaded_net):
    from model_metamers import validation
    x = _demo_sound()[None]
    logits = loaded_net.logits(np.concatenate([x, 0.5 * x, x[:, ::-1].copy()])).numpy()
    texts = _tf_greedy_transcripts(logits)
    text = texts[0]
    results = validation.same_class(loaded_net, logits[:1].repeat(3, 0), logits)
    assert results[0] == (True, text, text)
    for (same, natural, metamer), want in zip(results, texts):
        assert natural == text and metamer == want
        assert same == (metamer == text)


def test_missing_variable_is_named(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        for name in ('layer_1/weights', 'layer_1/bias'):
            tf.compat.v1.get_variable(name, RELEASE_SHAPES[name])
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(sess, str(tmp_path / 'ckpt'), write_meta_graph=False)
    with pytest.raises(checkpoints.CheckpointError, match='lstm_fused_cell/kernel'):
        build('deepspeech', weights=str(tmp_path / 'ckpt'), n_hidden=64, n_cell_dim=64)


def test_layers_shapes_and_settings(loaded_net):
    net = loaded_net
    # The MFCC input, then DeepSpeech.py create_model's layers dict (layer_1..3, rnn_output, layer_5,
    # layer_6 named logits here), input side first.
    assert net.metamer_layers == ['mfcc', 'layer_1', 'layer_2', 'layer_3', 'rnn_output', 'layer_5', 'logits']
    frames = 1 + (32000 - 512) // 320
    counts = {layer: net.stage_size(layer) for layer in net.metamer_layers}
    assert counts == {'mfcc': frames * 26, 'layer_1': frames * 2048, 'layer_2': frames * 2048,
                      'layer_3': frames * 2048, 'rnn_output': frames * 2048,
                      'layer_5': frames * 2048, 'logits': frames * 29}
    assert net.default_learning_rate == 0.0001 and net.sample_rate == 20000
    assert net.class_names[0] == ' ' and net.class_names[27] == "'" and len(net.class_names) == 29
    assert set(net.relu_stages) == {'layer_1', 'layer_2', 'layer_3', 'layer_5'}
    assert net.resolve('layer_6') == 'logits' and net.resolve('layer_4') == 'rnn_output'


def test_clipped_relu_stages_are_relu_of_preactivations(loaded_net):
    x = 3.0 * _demo_sound()[None]
    out = loaded_net.activations(x, ['layer_1', 'layer_1_preact'])
    np.testing.assert_array_equal(out['layer_1'].numpy(),
                                  tf.nn.relu(out['layer_1_preact']).numpy())
    assert out['layer_1'].numpy().max() <= 20.0


def test_gradient_from_waveform_is_finite_with_silence(loaded_net):
    x = np.concatenate([np.zeros(8000, np.float32), _demo_sound()[8000:]])[None]
    xv = tf.Variable(x)
    model = loaded_net.submodel(loaded_net.stages_for_matching('layer_1'))
    with tf.GradientTape() as tape:
        out = model(xv)
        loss = tf.reduce_sum(loaded_net.matched_tensor(out, 'layer_1'))
    grad = tape.gradient(loss, xv).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


def test_converted_weights_file_round_trip(tmp_path):
    from model_metamers import weights_io
    small = dict(n_hidden=32, n_cell_dim=16)
    source = build('deepspeech', weights='random', seed=1, **small)
    path = str(tmp_path / 'deepspeech.weights.h5')
    weights_io.save_weights(source.model, path)
    loaded = build('deepspeech', weights=path, **small)
    other = build('deepspeech', weights='random', seed=2, **small)
    x = _demo_sound()[None]
    want = source.logits(x).numpy()
    np.testing.assert_array_equal(loaded.logits(x).numpy(), want)
    assert not np.allclose(other.logits(x).numpy(), want)
    assert loaded.info['weights_format'] == 'weights_h5'

