"""Mozilla DeepSpeech (Hannun et al. 2014 architecture) from the waveform: release 0.5.1 or 0.4.1.

Which DeepSpeech release the paper used is unknown. Two releases are
supported; a checkpoint's variable names say which one it is
(:func:`detect_release`), and a converted ``*.weights.h5`` records it.
Both have the same network (``DeepSpeech.py``: ``create_model`` in 0.5.1,
``BiRNN`` in 0.4.1):

- MFCC (26 coefficients) with 9 frames of context on each side -> 494 features per frame;
- ``layer_1``, ``layer_2``, ``layer_3``: dense 2048, ReLU clipped at 20
  (``min(relu(x W + b), 20)``);
- a unidirectional LSTM of 2048 units, ``tf.contrib.rnn.LSTMBlockFusedCell``
  (default name ``lstm_fused_cell``, forget bias 1.0 added to the forget gate,
  no peepholes, no cell clipping, zero initial state), one kernel
  ``[494 -> 2048 + 2048, 4 * 2048]`` over ``[x_t, h_{t-1}]`` with gate blocks
  in the order input, cell input, forget, output;
- ``layer_5``: dense 2048, clipped ReLU; ``layer_6``: dense 29 (the logits:
  space, a-z, apostrophe, CTC blank last).

They differ in the checkpoint's variable names and in the features:

- **0.5.1** (June 2019): ``layer_{1,2,3,5,6}/weights`` ``[in, out]`` and
  ``/bias`` (:data:`CHECKPOINT_NAMES`); features from TF's ``AudioSpectrogram``
  / ``Mfcc`` ops (:mod:`.deepspeech_frontend`; 99 frames for 2 s).
- **0.4.1** (January 2019): ``h1``, ``h2``, ``h3``, ``h5``, ``h6`` (weights)
  and ``b1`` ... ``b6`` (biases) at the top level
  (:data:`CHECKPOINT_NAMES_V041`); features from ``python_speech_features.mfcc``
  on the int16 sample values (:mod:`.deepspeech_psf_frontend`; 100 frames for 2 s).

Both hold ``lstm_fused_cell/kernel`` ``[4096, 8192]`` and
``lstm_fused_cell/bias`` ``[8192]``; Adam slots, ``beta1_power`` /
``beta2_power`` and ``global_step`` in a release checkpoint are ignored.
Dropout is inactive. The network's stage and layer names are the same for
both releases.

Stages are ``[batch, frames, features]``. "Same class" for this sequence model
is the same greedy CTC transcript: see :func:`greedy_ctc_transcript` and
:meth:`DeepSpeechNetwork.transcribe`.
"""

import keras
import numpy as np
import tensorflow as tf

from model_metamers.networks.speech import deepspeech_frontend as frontend
from model_metamers.networks.speech import deepspeech_psf_frontend as psf_frontend
from model_metamers.networks.base import MetamerNetwork
from model_metamers.networks.weights.checkpoints import CheckpointError
from model_metamers.networks.weights.public_checkpoints import (
    DEEPSPEECH_CHECKPOINTS,
    DEEPSPEECH_RELEASE,
    PUBLIC_CHECKPOINTS,
)
from model_metamers.networks.weights.speech_weights import (
    load_weights,
    read_weights_file_attrs,
    resolve_name_map,
    resolve_weights,
)

NAME = 'deepspeech'
ALPHABET = [' '] + [chr(c) for c in range(ord('a'), ord('z') + 1)] + ["'"]   # data/alphabet.txt
BLANK_INDEX = len(ALPHABET)                 # 28: TF's CTC uses the last class as the blank
CLASS_NAMES = ALPHABET + ['<blank>']        # one per logit
N_HIDDEN = 2048
N_CELL_DIM = 2048
RELU_CLIP = 20.0
FORGET_BIAS = 1.0

DENSE_LAYERS = ('layer_1', 'layer_2', 'layer_3', 'layer_5')

# '<Keras layer>/<variable>' -> checkpoint variable of the 0.5.1 release.
CHECKPOINT_NAMES = {}
for _layer in DENSE_LAYERS + ('layer_6',):
    CHECKPOINT_NAMES['%s/kernel' % _layer] = '%s/weights' % _layer
    CHECKPOINT_NAMES['%s/bias' % _layer] = '%s/bias' % _layer
CHECKPOINT_NAMES['lstm_fused_cell/kernel'] = 'lstm_fused_cell/kernel'
CHECKPOINT_NAMES['lstm_fused_cell/bias'] = 'lstm_fused_cell/bias'

# The same for release 0.4.1 (DeepSpeech.py: BiRNN creates h1/b1 ... h6/b6 with tf.get_variable
# in the root scope; the LSTM is the same LSTMBlockFusedCell).
CHECKPOINT_NAMES_V041 = {}
for _layer in DENSE_LAYERS + ('layer_6',):
    CHECKPOINT_NAMES_V041['%s/kernel' % _layer] = 'h' + _layer[-1]
    CHECKPOINT_NAMES_V041['%s/bias' % _layer] = 'b' + _layer[-1]
CHECKPOINT_NAMES_V041['lstm_fused_cell/kernel'] = 'lstm_fused_cell/kernel'
CHECKPOINT_NAMES_V041['lstm_fused_cell/bias'] = 'lstm_fused_cell/bias'

# Supported releases, newest first: the first is the default of random and unlabelled weights.
RELEASES = ('0.5.1', '0.4.1')
CHECKPOINT_LAYOUTS = {'0.5.1': CHECKPOINT_NAMES, '0.4.1': CHECKPOINT_NAMES_V041}
assert RELEASES[0] == DEEPSPEECH_RELEASE and set(RELEASES) == set(DEEPSPEECH_CHECKPOINTS)

METAMER_LAYERS = ['mfcc', 'layer_1', 'layer_2', 'layer_3', 'rnn_output', 'layer_5', 'logits']
ALIASES = {'visualization_input': 'mfcc', 'layer_4': 'rnn_output', 'layer_6': 'logits',
           'raw_logits': 'logits', 'input_reshaped': 'mfcc_windows'}

__all__ = ['ALPHABET', 'BLANK_INDEX', 'CHECKPOINT_LAYOUTS', 'CHECKPOINT_NAMES',
           'CHECKPOINT_NAMES_V041', 'CLASS_NAMES', 'METAMER_LAYERS', 'PUBLIC_CHECKPOINTS',
           'RELEASES',
           'BlockLSTM', 'DeepSpeechNetwork', 'build_deepspeech', 'detect_release',
           'greedy_ctc_transcript', 'same_transcript']


class BlockLSTM(keras.layers.Layer):
    """The LSTM of ``LSTMBlockFusedCell`` on ``[batch, time, input]`` -> ``[batch, time, units]``.

    Weights in the release's layout: ``kernel`` ``[input + units, 4 * units]``
    acting on ``[x_t, h_{t-1}]``, ``bias`` ``[4 * units]``, gate blocks
    (i, ci, f, o); per step::

        i, ci, f, o = split([x_t, h] @ kernel + bias)
        c = sigmoid(f + forget_bias) * c + sigmoid(i) * tanh(ci)
        h = sigmoid(o) * tanh(c)

    from a zero state. The input projection of all steps is one matmul; the
    recurrence is a ``tf.scan`` (differentiable).
    """

    def __init__(self, units, forget_bias=FORGET_BIAS, seed=None, name='lstm_fused_cell', **kwargs):
        super().__init__(name=name, **kwargs)
        self.units = int(units)
        self.forget_bias = float(forget_bias)
        self.seed = seed

    def build(self, input_shape):
        n_in = int(input_shape[-1])
        # tf.get_variable's default initializer (Glorot uniform), zero bias.
        self.kernel = self.add_weight(
            name='kernel', shape=(n_in + self.units, 4 * self.units),
            initializer=keras.initializers.GlorotUniform(seed=self.seed))
        self.bias = self.add_weight(name='bias', shape=(4 * self.units,), initializer='zeros')
        self.built = True

    def call(self, x):
        n_in = x.shape[-1]
        kernel = tf.convert_to_tensor(self.kernel)
        w_x, w_h = kernel[:n_in], kernel[n_in:]
        projected = tf.tensordot(x, w_x, axes=1) + self.bias   # [batch, time, 4u]
        projected = tf.transpose(projected, [1, 0, 2])          # time-major
        zeros = tf.zeros([tf.shape(x)[0], self.units], x.dtype)
        forget_bias = self.forget_bias

        def step(state, gates_x):
            c, h = state
            gates = gates_x + tf.matmul(h, w_h)
            i, ci, f, o = tf.split(gates, 4, axis=-1)
            c = tf.sigmoid(f + forget_bias) * c + tf.sigmoid(i) * tf.tanh(ci)
            h = tf.sigmoid(o) * tf.tanh(c)
            return c, h

        _, outputs = tf.scan(step, projected, initializer=(zeros, zeros))
        return tf.transpose(outputs, [1, 0, 2])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, forget_bias=self.forget_bias, seed=self.seed)
        return config


class ClipAbove(keras.layers.Layer):
    """``min(x, clip)``. ``relu(min(x, c)) == min(relu(x), c)``: the clipped ReLU as relu of this."""

    def __init__(self, clip=RELU_CLIP, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.clip = float(clip)

    def call(self, x):
        return tf.minimum(x, self.clip)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(clip=self.clip)
        return config


def greedy_ctc_transcript(logits, alphabet=None):
    """Greedy (best-path) CTC decoding: argmax per frame, merge repeats, drop blanks.

    Args:
      logits: ``[time, classes]`` for one utterance, or ``[batch, time, classes]``;
        the blank is the last class.
      alphabet: one character per non-blank class (default :data:`ALPHABET`).

    Returns:
      The transcript (str), or a list of them for a batch.
    """
    alphabet = ALPHABET if alphabet is None else list(alphabet)
    logits = np.asarray(logits)
    if logits.ndim == 3:
        return [greedy_ctc_transcript(item, alphabet) for item in logits]
    if logits.ndim != 2 or logits.shape[-1] != len(alphabet) + 1:
        raise ValueError('logits must be [time, %d] or [batch, time, %d], got shape %s'
                         % (len(alphabet) + 1, len(alphabet) + 1, logits.shape))
    best = np.argmax(logits, axis=-1)
    blank = len(alphabet)
    chars, previous = [], None
    for label in best:
        if label != previous and label != blank:
            chars.append(alphabet[label])
        previous = label
    return ''.join(chars)


def same_transcript(natural_logits, metamer_logits):
    """Same-class test of one stimulus pair: ``(same, natural transcript, metamer transcript)``.

    ``*_logits``: ``[time, 29]``. The validation calls this through
    ``network.info['same_class']``.
    """
    natural = greedy_ctc_transcript(natural_logits)
    metamer = greedy_ctc_transcript(metamer_logits)
    return natural == metamer, natural, metamer


class DeepSpeechNetwork(MetamerNetwork):
    """A :class:`MetamerNetwork` whose "class" of a stimulus is its greedy CTC transcript."""

    def transcribe(self, x, from_stage=None):
        """Greedy CTC transcript (str) of each stimulus in the batch ``x``."""
        return greedy_ctc_transcript(self.logits(x, from_stage=from_stage).numpy())


def detect_release(prefix, name_map=None):
    """Which release's layout the TF checkpoint at ``prefix`` is in: ``(release, complete)``.

    ``complete`` is True when every name of that layout's name map (with
    ``name_map`` overrides) is in the checkpoint. When none is complete, the
    release whose names are most present is returned (ties: the first of
    :data:`RELEASES`), so that loading reports that layout's missing names.
    Raises :class:`CheckpointError` when both layouts are complete (only
    possible through overrides): pass ``release``.
    """
    names = set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())
    present = {}
    for release in RELEASES:
        wanted = set(resolve_name_map(CHECKPOINT_LAYOUTS[release], name_map).values())
        present[release] = (len(wanted & names), wanted <= names)
    complete = [r for r in RELEASES if present[r][1]]
    if len(complete) > 1:
        raise CheckpointError('checkpoint %s has the variables of both DeepSpeech layouts (%s); '
                              'pass release=%s' % (prefix, ', '.join(complete),
                                                   ' or '.join(repr(r) for r in complete)))
    if complete:
        return complete[0], True
    return max(RELEASES, key=lambda r: (present[r][0], -RELEASES.index(r))), False


def _plan_release(kind, path, release, name_map):
    """The release to build for ``weights`` (kind, path) and an explicit ``release`` (or None)."""
    if release is not None and release not in RELEASES:
        raise CheckpointError('unknown DeepSpeech release %r; supported: %s'
                              % (release, ', '.join(RELEASES)))
    if kind == 'checkpoint':
        found, complete = detect_release(path, name_map)
        if release is not None and complete and found != release:
            raise CheckpointError(
                'checkpoint %s is in the DeepSpeech %s layout (%s), not %s; leave release unset '
                '(it is detected) or give a %s checkpoint'
                % (path, found, _layout_signature(found), release, release))
        return release or found
    if kind == 'h5':
        stored = read_weights_file_attrs(path)['build_options'].get('release')
        if stored is not None and stored not in RELEASES:
            raise CheckpointError('%s was converted from DeepSpeech release %r, which this version '
                                  'does not build (supported: %s)'
                                  % (path, stored, ', '.join(RELEASES)))
        if release is not None and stored is not None and stored != release:
            raise CheckpointError('%s holds DeepSpeech %s weights (its build_options), not %s; '
                                  'leave release unset or convert the %s checkpoint'
                                  % (path, stored, release, release))
        # Files converted before 0.4.1 support carry no release: they are 0.5.1.
        return release or stored or RELEASES[0]
    return release or RELEASES[0]


def _layout_signature(release):
    names = CHECKPOINT_LAYOUTS[release]
    return '%s, %s, ..., %s' % (names['layer_1/kernel'], names['layer_1/bias'],
                                names['lstm_fused_cell/kernel'])


def _front_end(release, sample_rate, model_sample_rate, window_ms, step_ms, n_input,
               filterbank_channels, lower_frequency_limit, upper_frequency_limit):
    """``(keras layer, config)`` of the release's MFCC front end; None options take its defaults."""
    if release == '0.4.1':
        config = psf_frontend.SpeechFeaturesConfig(
            sample_rate=model_sample_rate,
            winlen=psf_frontend.WINLEN if window_ms is None else window_ms / 1000.0,
            winstep=psf_frontend.WINSTEP if step_ms is None else step_ms / 1000.0,
            numcep=n_input,
            nfilt=psf_frontend.NFILT if filterbank_channels is None else filterbank_channels,
            lowfreq=(psf_frontend.LOWFREQ if lower_frequency_limit is None
                     else lower_frequency_limit),
            highfreq=upper_frequency_limit)
        return psf_frontend.SpeechFeaturesMFCC(sample_rate=sample_rate, config=config,
                                               name='mfcc'), config

    def default(value, fallback):
        return fallback if value is None else value

    config = frontend.MFCCConfig(
        model_sample_rate, default(window_ms, frontend.WINDOW_MS),
        default(step_ms, frontend.STEP_MS), n_input,
        default(filterbank_channels, frontend.FILTERBANK_CHANNELS),
        default(lower_frequency_limit, frontend.LOWER_FREQUENCY_LIMIT),
        default(upper_frequency_limit, frontend.UPPER_FREQUENCY_LIMIT))
    return frontend.DeepSpeechMFCC(sample_rate=sample_rate, config=config, name='mfcc'), config


def _build_model(input_length, mfcc_layer, n_context, n_hidden, n_cell_dim, n_character,
                 relu_clip, forget_bias, seed):
    waveform = keras.Input(shape=(input_length,), name='waveform')
    features = mfcc_layer(waveform)
    windows = frontend.OverlappingWindows(n_context, name='mfcc_windows')(features)
    stages = {'mfcc': features, 'mfcc_windows': windows}
    relu_stages = {}
    net = windows
    for index, layer in enumerate(DENSE_LAYERS):
        if layer == 'layer_5':
            net = BlockLSTM(n_cell_dim, forget_bias=forget_bias, seed=seed * 1000 + 99,
                            name='lstm_fused_cell')(net)
            stages['rnn_output'] = net
        dense = keras.layers.Dense(
            n_hidden, name=layer, bias_initializer='zeros',
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 1000 + index))(net)
        pre = ClipAbove(relu_clip, name=layer + '_clip')(dense)
        net = keras.layers.ReLU(name=layer + '_relu')(pre)
        stages[layer + '_preact'] = pre
        stages[layer] = net
        relu_stages[layer] = [layer + '_preact']
    stages['logits'] = keras.layers.Dense(
        n_character, name='layer_6', bias_initializer='zeros',
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed * 1000 + 6))(net)
    return waveform, stages, relu_stages


def build_deepspeech(weights='random', seed=0, sample_rate=20000, input_length=40000,
                     model_sample_rate=frontend.SAMPLE_RATE, window_ms=None, step_ms=None,
                     n_input=frontend.N_INPUT, n_context=frontend.N_CONTEXT,
                     filterbank_channels=None, lower_frequency_limit=None,
                     upper_frequency_limit=None, n_hidden=N_HIDDEN, n_cell_dim=N_CELL_DIM,
                     relu_clip=RELU_CLIP, forget_bias=FORGET_BIAS, name_map=None, release=None):
    """DeepSpeech 0.5.1 or 0.4.1 as a :class:`DeepSpeechNetwork` on ``[batch, input_length]``.

    Args:
      weights: ``'random'`` (Glorot uniform, zero biases, seeded), a release
        checkpoint (the unpacked folder of ``deepspeech-0.5.1-checkpoint.tar.gz``
        or ``deepspeech-0.4.1-checkpoint.tar.gz``, or a prefix), or a converted
        ``*.weights.h5``.
      seed: seed of the random initialisation.
      sample_rate, input_length: the stimulus (Hz, samples); resampled to
        ``model_sample_rate`` in the graph.
      release: ``'0.5.1'`` or ``'0.4.1'``; None (default) detects it from the
        checkpoint's variable names (:func:`detect_release`) or reads it from
        the converted file, and is ``'0.5.1'`` for random weights. A release
        that contradicts the weights is an error.
      model_sample_rate, window_ms, step_ms, n_input, filterbank_channels,
        lower_frequency_limit, upper_frequency_limit: the MFCC front end; None
        takes the release's value. 0.5.1 (``AudioSpectrogram`` / ``Mfcc``):
        32 ms / 20 ms, 40 channels, 20-4000 Hz. 0.4.1 (``python_speech_features``):
        32 ms / 20 ms, 26 filters, 0 Hz to Nyquist (pre-emphasis 0.97, lifter
        22, log energy as coefficient 0 and the x32768 input scale are fixed).
        26 coefficients, 16 kHz for both.
      n_context: frames of context on each side (9).
      n_hidden, n_cell_dim, relu_clip, forget_bias: the architecture (2048,
        2048, 20, 1.0 in both releases).
      name_map: overrides of the release's name-map entries
        (:data:`CHECKPOINT_NAMES` / :data:`CHECKPOINT_NAMES_V041`; a dict or a
        JSON file path).

    Returns a :class:`DeepSpeechNetwork` (no ``representation_stage``: the paper
    optimised DeepSpeech metamers from the waveform). ``info['release']`` is the
    release built; ``info['same_class']`` is :func:`same_transcript`, the
    validation's same-class criterion.
    """
    kind, path = resolve_weights(weights, NAME, 'DeepSpeech 0.5.1 or 0.4.1 TF1')
    release = _plan_release(kind, path, release, name_map)
    names = resolve_name_map(CHECKPOINT_LAYOUTS[release], name_map)
    mfcc_layer, config = _front_end(release, sample_rate, model_sample_rate, window_ms, step_ms,
                                    n_input, filterbank_channels, lower_frequency_limit,
                                    upper_frequency_limit)
    options = {'sample_rate': sample_rate, 'input_length': input_length, 'release': release,
               'model_sample_rate': model_sample_rate, 'window_ms': window_ms,
               'step_ms': step_ms, 'n_input': n_input, 'n_context': n_context,
               'filterbank_channels': filterbank_channels,
               'lower_frequency_limit': lower_frequency_limit,
               'upper_frequency_limit': upper_frequency_limit, 'n_hidden': n_hidden,
               'n_cell_dim': n_cell_dim, 'relu_clip': relu_clip, 'forget_bias': forget_bias}
    inputs, stages, relu_stages = _build_model(input_length, mfcc_layer, n_context, n_hidden,
                                               n_cell_dim, len(CLASS_NAMES), relu_clip,
                                               forget_bias, seed)
    network = DeepSpeechNetwork(
        NAME, inputs, stages, METAMER_LAYERS, class_names=CLASS_NAMES, modality='audio',
        relu_stages=relu_stages, aliases=ALIASES, logits_stage='logits', sample_rate=sample_rate,
        default_learning_rate=0.0001, representation_stage=None,
        info={'has_classes': True,
              'same_class': same_transcript,
              'class_criterion': 'greedy_ctc_transcript',
              'release': release,
              'public_checkpoint': DEEPSPEECH_CHECKPOINTS[release],
              'mfcc': config.as_dict(), 'n_context': int(n_context),
              'relu_clip': float(relu_clip), 'forget_bias': float(forget_bias),
              'resampling': 'fft',
              'build_options': options})
    try:
        network.info.update(load_weights(network.model, kind, path, names))
    except CheckpointError as e:
        if kind != 'checkpoint':
            raise
        raise CheckpointError('read as the DeepSpeech %s layout (%s): %s'
                              % (release, _layout_signature(release), e)) from None
    return network
