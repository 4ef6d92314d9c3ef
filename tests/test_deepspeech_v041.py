"""DeepSpeech 0.4.1: the python_speech_features front end in TF against python_speech_features
itself, and the network against DeepSpeech.py v0.4.1's BiRNN rebuilt in a tf.compat.v1 graph
from a checkpoint whose variables carry the names that BiRNN gives them.

Every upstream fact used here is from mozilla/DeepSpeech at tag v0.4.1:
- util/audio.py, audiofile_to_input_vector: ``fs, audio = scipy.io.wavfile.read(path)``;
  ``mfcc(audio, samplerate=fs, numcep=numcep, winlen=0.032, winstep=0.02, winfunc=np.hamming)``;
  ``numcontext`` rows of zeros before and after.
- util/feeding.py, _DataSetLoader._populate_batch_queue: windows of 2*numcontext+1 frames by
  ``np.lib.stride_tricks.as_strided``, shape ``[num_strides, 19, 26]``.
- DeepSpeech.py, BiRNN: input ``[batch, n_steps, 19, 26]`` transposed ``[1, 0, 2, 3]`` and
  reshaped to ``[-1, 494]``; ``variable_on_worker_level('b1', [n_hidden_1])``,
  ``('h1', [n_input + 2*n_input*n_context, n_hidden_1])``, likewise b2/h2, b3/h3, b5/h5, b6/h6
  (``tf.get_variable`` in the root variable scope); ``min(relu(x h + b), relu_clip)``;
  ``tf.contrib.rnn.LSTMBlockFusedCell(n_cell_dim)`` (variables ``lstm_fused_cell/kernel`` and
  ``/bias``, the names export()'s TFLite ``fixup`` maps ``rnn/lstm_cell/`` onto);
  ``layer_6 = x h6 + b6``.
- util/config.py: n_input 26, n_context 9, n_hidden_1 = 2 = 3 = 5 = n_cell_dim = n_hidden
  (2048 for the release, README), n_hidden_6 = alphabet size + 1 = 29.
- DeepSpeech.py, train(): ``global_step`` and an AdamOptimizer (slots ``<var>/Adam``,
  ``<var>/Adam_1``, ``beta1_power``, ``beta2_power``) are in a training checkpoint.
"""

import os

import numpy as np
import pytest
import scipy.fftpack
import scipy.signal
import tensorflow as tf
from scipy.io import wavfile

from model_metamers import resources
from model_metamers.networks import build
from model_metamers.networks.weights import checkpoints
from tests.test_deepspeech import _tf_greedy_transcripts
from model_metamers.networks.speech import deepspeech as ds
from model_metamers.networks.speech import deepspeech_psf_frontend as pf

psf = pytest.importorskip('python_speech_features',
                          reason='pip install python_speech_features (the "test" extra)')

N_CONTEXT = 9
N_INPUT = 26
N_HIDDEN = 2048
# Measured max |MFCC difference| to python_speech_features (float64; |MFCC| up to ~80):
# 9e-5 (speech), 5e-5 (noise after digital silence), from float32 round-off of our FFT.
MFCC_ATOL = 3e-4


def _v041_shapes(n_hidden=N_HIDDEN, n_cell_dim=None):
    """Checkpoint variables of DeepSpeech.py v0.4.1's BiRNN (names written out from the source)."""
    n_cell_dim = n_cell_dim or n_hidden
    n_in = N_INPUT + 2 * N_INPUT * N_CONTEXT
    return {
        'b1': (n_hidden,), 'h1': (n_in, n_hidden),
        'b2': (n_hidden,), 'h2': (n_hidden, n_hidden),
        'b3': (n_cell_dim,), 'h3': (n_hidden, n_cell_dim),
        'lstm_fused_cell/kernel': (n_cell_dim + n_cell_dim, 4 * n_cell_dim),
        'lstm_fused_cell/bias': (4 * n_cell_dim,),
        'b5': (n_hidden,), 'h5': (n_cell_dim, n_hidden),
        'b6': (29,), 'h6': (n_hidden, 29),
    }


def _demo_16k():
    sr, x = wavfile.read(resources.DEMO_SOUND)
    assert sr == 20000 and x.shape == (40000,)
    x = x.astype(np.float64) - x.mean()
    x = 0.1 * x / np.sqrt(np.mean(x ** 2))
    return scipy.signal.resample(x, 32000)


def _int16(x):
    return np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int16)


def _upstream_features(wav_path):
    """util/audio.py v0.4.1 audiofile_to_input_vector(wav_path, 26, 9) (the call re-typed)."""
    fs, audio = wavfile.read(wav_path)
    features = psf.mfcc(audio, samplerate=fs, numcep=N_INPUT, winlen=0.032, winstep=0.02,
                        winfunc=np.hamming)
    empty = np.zeros((N_CONTEXT, N_INPUT), dtype=features.dtype)
    return np.concatenate((empty, features, empty))


def _upstream_windows(features):
    """util/feeding.py v0.4.1: the as_strided view [num_strides, 19, 26]."""
    num_strides = len(features) - 2 * N_CONTEXT
    return np.lib.stride_tricks.as_strided(
        features, (num_strides, 2 * N_CONTEXT + 1, N_INPUT),
        (features.strides[0], features.strides[0], features.strides[1]), writeable=False)


def _psf_reference(int16_audio, **kwargs):
    args = {'samplerate': 16000, 'numcep': 26, 'winlen': 0.032, 'winstep': 0.02,
            'winfunc': np.hamming}
    args.update(kwargs)
    return psf.mfcc(int16_audio, **args)


# ---------------------------------------------------------------- front end
def test_filterbank_dct_and_lifter_match_python_speech_features():
    config = pf.SpeechFeaturesConfig()
    want = psf.get_filterbanks(26, 512, 16000, 0, 8000).T
    assert config.filterbank.shape == want.shape == (257, 26)
    np.testing.assert_array_equal(config.filterbank, want)
    dct = scipy.fftpack.dct(np.eye(26), type=2, axis=1, norm='ortho')
    np.testing.assert_allclose(config.dct, dct, rtol=0, atol=1e-12)
    lifted = psf.base.lifter(np.ones((1, 26)), 22)[0]
    np.testing.assert_allclose(config.lifter, lifted, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(config.window, np.hamming(512))
    assert (config.frame_len, config.frame_step, config.highfreq) == (512, 320, 8000.0)


@pytest.mark.parametrize('n', [1, 300, 512, 513, 832, 833, 16100, 32000])
def test_frame_count_matches_framesig(n):
    config = pf.SpeechFeaturesConfig()
    assert config.num_frames(n) == len(psf.sigproc.framesig(np.zeros(n), 512, 320))


def test_mfcc_matches_python_speech_features():
    rng = np.random.default_rng(0)
    speech = _int16(_demo_16k())
    # Digital silence first (exact zeros: the eps floor), and a length that pads the last frame.
    noise = _int16(np.concatenate([np.zeros(3200), 0.1 * rng.standard_normal(28800)]))
    got = pf.mfcc(np.stack([speech, noise]).astype(np.float32) / 32768.0).numpy()
    assert got.shape == (2, 100, 26)
    for row, audio in zip(got, (speech, noise)):
        want = _psf_reference(audio)
        assert np.abs(want).max() > 20
        np.testing.assert_allclose(row, want, rtol=0, atol=MFCC_ATOL)
    # The first 10 frames of the noise are digital silence: log(eps) everywhere but the lifter.
    np.testing.assert_allclose(got[1, :5, 0], np.log(np.finfo(float).eps), rtol=1e-6)


@pytest.mark.parametrize('n', [400, 16100])
def test_mfcc_matches_for_short_and_odd_lengths(n):
    audio = _int16(0.05 * np.random.default_rng(n).standard_normal(n))
    got = pf.mfcc(audio[None].astype(np.float32) / 32768.0).numpy()[0]
    np.testing.assert_allclose(got, _psf_reference(audio), rtol=0, atol=MFCC_ATOL)


def test_mfcc_options_are_honoured():
    audio = _int16(0.1 * np.random.default_rng(1).standard_normal(16000))
    config = pf.SpeechFeaturesConfig(winlen=0.025, winstep=0.01, numcep=13, nfilt=40,
                                     lowfreq=100.0, highfreq=7000.0, preemph=0.95, ceplifter=0,
                                     append_energy=False)
    got = pf.mfcc(audio[None].astype(np.float32) / 32768.0, config).numpy()[0]
    want = psf.mfcc(audio, samplerate=16000, winlen=0.025, winstep=0.01, numcep=13, nfilt=40,
                    lowfreq=100, highfreq=7000, preemph=0.95, ceplifter=0, appendEnergy=False,
                    winfunc=np.hamming)
    assert got.shape == want.shape == (99, 13)
    np.testing.assert_allclose(got, want, rtol=0, atol=MFCC_ATOL)


def test_gradient_is_finite_through_digital_silence():
    x = np.concatenate([np.zeros(4000), 0.1 * np.random.default_rng(2).standard_normal(28000)])
    xv = tf.Variable(x[None].astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(pf.mfcc(xv))
    grad = tape.gradient(loss, xv).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad[0, 5000:]).max() > 0


def test_bad_front_end_settings_are_clear_errors():
    with pytest.raises(pf.SpeechFeaturesError, match='numcep'):
        pf.SpeechFeaturesConfig(numcep=30)
    with pytest.raises(pf.SpeechFeaturesError, match='nfft'):
        pf.SpeechFeaturesConfig(winlen=0.05)          # 800 samples > 512-point FFT
    with pytest.raises(pf.SpeechFeaturesError, match='highfreq'):
        pf.SpeechFeaturesConfig(highfreq=9000.0)


# ---------------------------------------------------------------- checkpoint and network
def _birnn_v041(batch_x, shapes, seed_base=10):
    """DeepSpeech.py v0.4.1 BiRNN (inference: no dropout) on [batch, n_steps, 19, 26]; the LSTM
    is the BlockLSTM op that LSTMBlockFusedCell runs. Variables with their release names."""
    tf1 = tf.compat.v1

    def var(name):
        seed = sorted(shapes).index(name) + seed_base
        init = (tf1.random_normal_initializer(stddev=0.1, seed=seed) if name[0] == 'b'
                or name.endswith('bias') else tf1.glorot_uniform_initializer(seed=seed))
        return tf1.get_variable(name, shapes[name], initializer=init)

    n_cell = shapes['lstm_fused_cell/bias'][0] // 4
    batch = tf.shape(batch_x)[0]
    x = tf.reshape(tf.transpose(batch_x, [1, 0, 2, 3]), [-1, 494])
    end_points = {}

    def dense(n, x, relu=True):
        out = tf.add(tf.matmul(x, var('h%d' % n)), var('b%d' % n))
        return tf.minimum(tf.nn.relu(out), 20.0) if relu else out

    for n in (1, 2, 3):
        x = end_points['layer_%d' % n] = dense(n, x)
    x = tf.reshape(x, [-1, batch, x.shape[-1]])
    zeros = tf.zeros([batch, n_cell])
    outputs = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64), x=x, cs_prev=zeros, h_prev=zeros,
        w=var('lstm_fused_cell/kernel'), wci=tf.zeros([n_cell]), wcf=tf.zeros([n_cell]),
        wco=tf.zeros([n_cell]), b=var('lstm_fused_cell/bias'), forget_bias=1.0, cell_clip=-1.0,
        use_peephole=False)
    x = end_points['rnn_output'] = tf.reshape(outputs[6], [-1, n_cell])
    x = end_points['layer_5'] = dense(5, x)
    end_points['logits'] = dense(6, x, relu=False)
    return {k: tf.transpose(tf.reshape(v, [-1, batch, v.shape[-1]]), [1, 0, 2])
            for k, v in end_points.items()}


def _write_v041_checkpoint(folder, shapes, windows=None, extra=()):
    """Save BiRNN's variables (+ Adam slots, beta powers, global_step, ``extra`` names) as
    ``<folder>/model.v0.4.1``; returns (prefix, {end point: value} for ``windows``, weights)."""
    graph = tf.Graph()
    with graph.as_default():
        tf1 = tf.compat.v1
        batch_x = tf1.placeholder(tf.float32, [None, None, 2 * N_CONTEXT + 1, N_INPUT])
        end_points = _birnn_v041(batch_x, shapes)
        for name in ('h1/Adam', 'h1/Adam_1'):
            tf1.get_variable(name, initializer=np.zeros(shapes['h1'], np.float32))
        for name in ('beta1_power', 'beta2_power'):
            tf1.get_variable(name, initializer=np.float32(0.9))
        for name in extra:
            tf1.get_variable(name, initializer=np.zeros(2, np.float32))
        tf1.train.get_or_create_global_step()
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            values = None if windows is None else sess.run(end_points, {batch_x: windows})
            weights = {v.op.name: sess.run(v) for v in tf1.global_variables()}
            prefix = str(folder / 'model.v0.4.1')
            tf1.train.Saver().save(sess, prefix, write_meta_graph=False)
    return prefix, values, weights


@pytest.fixture(scope='module')
def v041_release(tmp_path_factory):
    """A release-shaped 0.4.1 checkpoint folder and the upstream pipeline's end points for the
    demo sound as a 16 kHz 16-bit WAV file."""
    folder = tmp_path_factory.mktemp('deepspeech-0.4.1-checkpoint')
    wav_path = str(folder.parent / 'demo16k.wav')
    wavfile.write(wav_path, 16000, _int16(_demo_16k()))
    features = _upstream_features(wav_path)
    windows = np.asarray(_upstream_windows(features), np.float32)[None]
    prefix, values, weights = _write_v041_checkpoint(folder, _v041_shapes(), windows)
    # Whether the release tarball has TF's `checkpoint` state file is not known; the folder
    # must load without it.
    os.remove(str(folder / 'checkpoint'))
    return {'folder': str(folder), 'prefix': prefix, 'wav': wav_path,
            'mfcc': features[N_CONTEXT:-N_CONTEXT], 'values': values, 'weights': weights}


@pytest.fixture(scope='module')
def v041_net(v041_release):
    # 2 s at 16 kHz: no resampling, so the waveform is exactly the WAV file's samples.
    return build('deepspeech', weights=v041_release['folder'], sample_rate=16000,
                 input_length=32000)


def _wav_waveform(path):
    _, audio = wavfile.read(path)
    return (audio.astype(np.float32) / 32768.0)[None]


def test_v041_checkpoint_is_detected_and_every_variable_loaded(v041_release, v041_net):
    assert v041_net.info['release'] == '0.4.1'
    assert v041_net.info['weights'] == v041_release['prefix']
    assert v041_net.info['mfcc']['implementation'] == 'python_speech_features'
    assert v041_net.info['build_options']['release'] == '0.4.1'
    saved = v041_release['weights']
    variables = {'%s/%s' % (layer.name, w.name.split('/')[-1].split(':')[0]): w
                 for layer in v041_net.model.layers for w in layer.weights}
    # Release variable -> Keras weight, written out: 0.4.1's BiRNN names its dense weights h1..h6 and
    # b1..b6 (no h4/b4: layer 4 is the LSTM) in the root scope.
    keras_of = {'lstm_fused_cell/kernel': 'lstm_fused_cell/kernel', 'lstm_fused_cell/bias': 'lstm_fused_cell/bias'}
    for n in (1, 2, 3, 5, 6):
        keras_of['h%d' % n] = 'layer_%d/kernel' % n
        keras_of['b%d' % n] = 'layer_%d/bias' % n
    assert set(variables) == set(keras_of.values())
    assert not np.array_equal(saved['h2'], saved['h3'])
    for ckpt_name, keras_name in keras_of.items():
        np.testing.assert_array_equal(variables[keras_name].numpy(), saved[ckpt_name])


def test_v041_every_layer_matches_release_graph(v041_release, v041_net):
    mfccs = v041_release['mfcc'][None].astype(np.float32)
    reference = v041_release['values']
    got = v041_net.activations(mfccs, list(reference), from_stage='mfcc')
    for name, want in reference.items():
        scale = np.abs(want).max()
        assert scale > 0.1, name
        np.testing.assert_allclose(got[name].numpy(), want, rtol=0, atol=1e-4 * scale,
                                   err_msg=name)


def test_v041_waveform_to_logits_matches_upstream_pipeline(v041_release, v041_net):
    x = _wav_waveform(v041_release['wav'])
    out = v041_net.activations(x, ['mfcc', 'logits'])
    assert out['mfcc'].shape == (1, 100, 26)
    np.testing.assert_allclose(out['mfcc'].numpy()[0], v041_release['mfcc'], rtol=0,
                               atol=MFCC_ATOL)
    want = v041_release['values']['logits']
    # Measured 1.8e-6 of the scale.
    np.testing.assert_allclose(out['logits'].numpy(), want, rtol=0,
                               atol=2e-5 * np.abs(want).max())
    assert v041_net.transcribe(x) == _tf_greedy_transcripts(want[:1])


def test_v041_stage_names_and_sizes(v041_net):
    assert v041_net.metamer_layers == ['mfcc', 'layer_1', 'layer_2', 'layer_3', 'rnn_output', 'layer_5',
                                       'logits']
    assert v041_net.stage_size('mfcc') == 100 * 26
    assert v041_net.stage_size('layer_3') == 100 * 2048
    assert v041_net.resolve('layer_6') == 'logits'


def test_v041_default_stimulus_resamples_20k():
    net = build('deepspeech', release='0.4.1', n_hidden=16, n_cell_dim=16)
    _, x = wavfile.read(resources.DEMO_SOUND)
    x = (0.1 * (x - x.mean()) / np.std(x)).astype(np.float32)
    got = net.activations(x[None], ['mfcc'])['mfcc'].numpy()[0]
    assert net.info['release'] == '0.4.1' and got.shape == (100, 26)
    x16 = scipy.signal.resample(x.astype(np.float64), 32000) * 32768.0
    want = _psf_reference(x16)
    # Our float32 FFT resampling vs scipy's float64 one, magnified by the log and the lifter
    # (x12): measured max 1.8e-3.
    np.testing.assert_allclose(got, want, rtol=0, atol=5e-3)


def test_random_weights_default_to_051():
    net = build('deepspeech', n_hidden=16, n_cell_dim=16)
    assert net.info['release'] == '0.5.1' and net.stage_size('mfcc') == 99 * 26


def test_release_that_contradicts_checkpoint_is_refused(v041_release):
    with pytest.raises(checkpoints.CheckpointError,
                       match=r'DeepSpeech 0\.4\.1 layout \(h1, b1, \.\.\., lstm_fused_cell'):
        build('deepspeech', weights=v041_release['prefix'], release='0.5.1')
    with pytest.raises(checkpoints.CheckpointError, match='unknown DeepSpeech release'):
        build('deepspeech', weights=v041_release['prefix'], release='0.4.0')


def test_incomplete_v041_checkpoint_names_the_missing_variables(tmp_path):
    shapes = {k: v for k, v in _v041_shapes(16).items() if k not in ('h5', 'b5')}
    graph = tf.Graph()
    with graph.as_default():
        for name, shape in shapes.items():
            tf.compat.v1.get_variable(name, shape)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(sess, str(tmp_path / 'ckpt'), write_meta_graph=False)
    with pytest.raises(checkpoints.CheckpointError) as info:
        build('deepspeech', weights=str(tmp_path / 'ckpt'), n_hidden=16, n_cell_dim=16)
    message = str(info.value)
    assert message.startswith('read as the DeepSpeech 0.4.1 layout')
    assert 'layer_5/kernel' in message and '<- h5' in message and 'b5' in message


def test_checkpoint_with_both_layouts_is_ambiguous(tmp_path):
    small = _v041_shapes(16)
    extra = list(ds.CHECKPOINT_NAMES.values())
    graph = tf.Graph()
    with graph.as_default():
        for name in list(small) + [n for n in extra if n not in small]:
            tf.compat.v1.get_variable(name, [2])
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().save(sess, str(tmp_path / 'ckpt'), write_meta_graph=False)
    with pytest.raises(checkpoints.CheckpointError, match="both DeepSpeech layouts.*release="):
        build('deepspeech', weights=str(tmp_path / 'ckpt'), n_hidden=16, n_cell_dim=16)


def test_converted_v041_file_keeps_its_release(tmp_path):
    from model_metamers import convert_checkpoint, weights_io

    small = {'n_hidden': 16, 'n_cell_dim': 16}
    prefix, _, _ = _write_v041_checkpoint(tmp_path, _v041_shapes(16))
    output, source = convert_checkpoint.convert('deepspeech', prefix,
                                                str(tmp_path / 'ds041.weights.h5'), **small)
    assert source.info['release'] == '0.4.1'
    loaded = build('deepspeech', weights=output, **small)
    assert loaded.info['release'] == '0.4.1' and loaded.info['weights_format'] == 'weights_h5'
    x = (0.1 * np.random.default_rng(3).standard_normal((1, 40000))).astype(np.float32)
    want = source.logits(x).numpy()
    assert want.shape == (1, 100, 29)
    np.testing.assert_array_equal(loaded.logits(x).numpy(), want)
    with pytest.raises(checkpoints.CheckpointError, match='holds DeepSpeech 0.4.1 weights'):
        build('deepspeech', weights=output, release='0.5.1', **small)
    # A file without the attribute (converted before 0.4.1 was supported) is 0.5.1.
    plain = str(tmp_path / 'plain.weights.h5')
    weights_io.save_weights(source.model, plain)
    assert build('deepspeech', weights=plain, **small).info['release'] == '0.5.1'


def test_folder_with_several_prefixes_and_no_state_file_is_refused(tmp_path):
    for name in ('model.v0.4.1', 'model.v0.4.1-old'):
        (tmp_path / (name + '.index')).write_bytes(b'')
    with pytest.raises(checkpoints.CheckpointError, match=r'holds 2 checkpoints.*pass one prefix'):
        build('deepspeech', weights=str(tmp_path))
