"""The five audio networks of Feather et al. 2019 (§3.4, Tables S2-S4) as Keras models.

Every network takes a waveform ``[batch, 40000]`` (2 s at 20 kHz, float32),
computes the word-network cochleagram ``[batch, 211, 400, 1]`` inside the model
(``tfcochleagram.Cochleagram(20000, **WORD_CONFIG)``) and returns every named
stage. Two architectures:

* aliased (Table S2): strided convolutions and max-pooling;
* reduced aliasing (Table S3): stride-1 convolutions followed by Hanning
  pooling with the conv's stride, and Hanning pooling in place of max-pooling.

All convolutions and poolings use SAME padding (Table S4's sizes need it);
batch norm always runs in inference mode (moving statistics; the layers are
built non-trainable so ``training=True`` cannot switch them); dropout is
omitted, being the identity at inference.

Stage names (public API, shapes without batch for the reduced-aliasing net):
``cochleagram`` (211, 400, 1; alias ``visualization_input``), ``batch_norm_0``,
``conv_0_pre_relu`` (conv output incl. bias), ``conv_0`` (after the ReLU, the
paper's layer), ``pool_0_0`` (71, 134, 96), ``pool_0_1``, ``batch_norm_1``,
``conv_1_pre_relu``, ``conv_1``, ``pool_1_0`` (18, 34, 256), ``pool_1_1``,
``batch_norm_2``, ``conv_2_pre_relu`` .. ``conv_4``, ``avg_pool`` (5, 9, 512),
``flatten`` (23040), ``fc_intermediate_pre_relu``, ``fc_intermediate`` (4096),
``logits``. The aliased net has ``pool_0`` and ``pool_1`` (max-pooling) instead
of the four Hanning poolings. The two-head network's ``logits`` is the word head
(794); it also has ``logits_word`` (the same tensor) and ``logits_audioset`` (517).
"""

import collections
import json
import zlib

import h5py
import keras
import numpy as np
import tensorflow as tf

import tfcochleagram
from model_metamers.errors import UserError
from model_metamers import resources
from model_metamers.fileio import decoded
from model_metamers.layers import HanningPooling, SingleChannelConv2D
from model_metamers.networks.weights import bookkeeping, checkpoints, tf1_audio_names, tf1_network_config
from model_metamers.networks.base import MetamerNetwork
from model_metamers.networks.weights.checkpoints import CheckpointError

SAMPLE_RATE = 20000  # Hz
SIGNAL_LENGTH = 40000  # samples (2 s)
N_CLASSES = {'word': 794, 'audioset': 517}
# avgpool [2, 5] stride 2 on the 9 x 17 x 512 conv_4 output -> rows of fc_intermediate/kernel
FLATTEN_SIZES = {'SAME': 5 * 9 * 512, 'VALID': 4 * 7 * 512}

METAMER_LAYERS = {
    'aliased': ['cochleagram', 'conv_0', 'conv_1', 'conv_2', 'conv_3', 'conv_4',
                'fc_intermediate', 'logits'],
    'reduced_aliasing': ['cochleagram', 'pool_0_0', 'pool_1_0', 'conv_2', 'conv_3', 'conv_4',
                         'fc_intermediate', 'logits'],
}

Variant = collections.namedtuple('Variant', 'architecture tasks trained description')
# tasks: output heads, the first one is ``logits`` (and gives class_names).
VARIANTS = {
    'word_aliased': Variant('aliased', ('word',), True, 'word-trained CNN, Table S2'),
    'word_reduced_aliasing': Variant('reduced_aliasing', ('word',), True,
                                     'word-trained CNN with Hanning pooling, Table S3'),
    'word_reduced_aliasing_random': Variant('reduced_aliasing', ('word',), False,
                                            'Table S3 architecture at random initialisation'),
    'audioset_reduced_aliasing': Variant('reduced_aliasing', ('audioset',), True,
                                         'Table S3 architecture trained on AudioSet'),
    'word_audioset_reduced_aliasing': Variant('reduced_aliasing', ('word', 'audioset'), True,
                                              'Table S3 architecture, word and AudioSet heads'),
}


class AudioNetworkOptionError(UserError, ValueError):
    """A builder option with a value the audio networks do not accept."""


def audioset_class_names():
    """517 generic names ``audioset_000`` .. ``audioset_516``.

    The label list of the 517-way AudioSet task is not available offline, so
    the names only give the logit index.
    """
    return ['audioset_%03d' % i for i in range(N_CLASSES['audioset'])]


def class_names_for(task):
    """Class names of the logits of ``task`` (``'word'``: 794 with the null class at 0)."""
    return resources.word_classes() if task == 'word' else audioset_class_names()


# ------------------------------------------------------------------ options
def _check_padding(avgpool_padding):
    if avgpool_padding is None:
        return None
    padding = str(avgpool_padding).upper()
    if padding not in FLATTEN_SIZES:
        raise AudioNetworkOptionError('avgpool_padding must be "SAME" or "VALID" (or None to infer '
                                      'it from the weights), got %r' % (avgpool_padding,))
    return padding


def _check_normalize(hanning_normalize):
    if hanning_normalize is not None and not isinstance(hanning_normalize, (bool, np.bool_)):
        raise AudioNetworkOptionError('hanning_normalize must be True, False or None, got %r'
                                      % (hanning_normalize,))
    return None if hanning_normalize is None else bool(hanning_normalize)


def padding_from_flatten_size(rows, label):
    """``'SAME'`` or ``'VALID'`` from the number of rows of ``fc_intermediate/kernel``."""
    for padding, size in FLATTEN_SIZES.items():
        if rows == size:
            return padding
    raise CheckpointError('%s: fc_intermediate/kernel has %d input rows; the audio networks need '
                          '%d (avgpool SAME) or %d (avgpool VALID)'
                          % (label, rows, FLATTEN_SIZES['SAME'], FLATTEN_SIZES['VALID']))


def _agree(given, found, option, label):
    if given is not None and given != found:
        raise CheckpointError('%s was given as %r but the weights in %s need %r; leave it unset '
                              'to use the weights\' value' % (option, given, label, found))
    return found


# ------------------------------------------------------------------ weights
def _read_tf1(prefix, mapping):
    """Checkpoint arrays for ``assign_by_name``, reading only the tensors the map uses.

    The published checkpoints also hold optimiser slots (each as large as
    its variable); every other variable enters as a zero-memory placeholder
    of its shape, so it is listed in mismatch errors but never read.
    """
    reader = tf.train.load_checkpoint(prefix)
    needed = set(mapping.values())
    values = {}
    for name, shape in reader.get_variable_to_shape_map().items():
        values[name] = (reader.get_tensor(name) if name in needed
                        else np.broadcast_to(np.float32(0), shape))
    return values


def read_weights_file_info(path):
    """``(attrs, fc_rows)`` of a converted ``*.weights.h5``: its attributes and flatten size.

    ``attrs['build_options']`` is decoded from JSON; ``fc_rows`` is None when
    the file has no ``fc_intermediate/kernel``.
    """
    with h5py.File(path, 'r') as f:
        attrs = {k: decoded(v) for k, v in f.attrs.items()}
        kernel = f.get('fc_intermediate/kernel')
        rows = None if kernel is None else int(kernel.shape[0])
    try:
        attrs['build_options'] = json.loads(attrs.get('build_options', '{}'))
    except (TypeError, ValueError):
        raise CheckpointError('%s: attribute build_options is not JSON; reconvert the checkpoint '
                              'with python -m model_metamers.convert_checkpoint' % path) from None
    return attrs, rows


def _check_h5_network(path, attrs, name, variant):
    stored = attrs.get('network')
    if stored is None or stored == name:
        return
    other = VARIANTS.get(stored)
    if other is None or (other.architecture, other.tasks) != (variant.architecture, variant.tasks):
        raise CheckpointError('%s holds weights of network %s, which does not fit %s (%s); build %s '
                              'with it or convert the checkpoint of %s'
                              % (path, stored, name, variant.description, stored, name))


def _other_heads(names, mapped):
    """Unread ``brain_network/fc_top_<i>/...`` variables: heads of tasks this network does not have.

    They sit after ``fc_intermediate``, off the path to every stage of the
    network, so leaving them out changes no activation (the AudioSet network
    loads from the two-head checkpoint this way); they are reported, not errors.
    """
    prefix = tf1_audio_names.TF1_SCOPE + '/fc_top_'
    mapped = set(mapped)
    return sorted(n for n in names if n.startswith(prefix) and n not in mapped
                  and bookkeeping.kind_of(n) is None)


def _check_accounted(values, mapped, path, ignore):
    """Every ``brain_network/`` variable must be read, be training bookkeeping or be ignored on purpose."""
    extra = checkpoints.unaccounted(values, set(mapped) | set(_other_heads(values, mapped)),
                                    tf1_audio_names.TF1_SCOPE, ignore)
    if extra:
        raise CheckpointError(
            'checkpoint %s holds %d variable(s) of the network that the Keras model would not use: '
            '%s. The model would compute something else than the checkpoint\'s network. Map them '
            'to Keras variables (python -m model_metamers.convert_checkpoint --name_map=..., see '
            '--print_name_map) or, if the network truly does not use them, ignore them on purpose '
            '(convert_checkpoint --ignore_variables=%s)'
            % (path, len(extra), ', '.join('%s %s' % (n, tuple(np.shape(values[n]))) for n in extra),
               ','.join(extra)))


def _config_options(config, label, hanning_normalize, avgpool_padding):
    """The build options the configuration pickle sets; a given option must agree with it."""
    found = tf1_network_config.build_options(config.layers, config.path)
    if found['hanning_normalize'] is not None:
        hanning_normalize = _agree(hanning_normalize, found['hanning_normalize'],
                                   'hanning_normalize', config.path)
    if found['avgpool_padding'] is not None:
        avgpool_padding = _agree(avgpool_padding, found['avgpool_padding'], 'avgpool_padding',
                                 config.path)
    return hanning_normalize, avgpool_padding


def _plan_weights(name, variant, weights, hanning_normalize, avgpool_padding, name_map,
                  network_config=None, ignore_variables=None, use_ema=False):
    """Where the weights come from and the options they imply, before building.

    Returns ``(kind, path, options, config)``; ``config`` is the
    :class:`_Config` of the network-configuration pickle read for a TF1
    checkpoint (given, or the release's file beside the checkpoint), else None.
    """
    kind, path = checkpoints.weights_kind(weights, name, 'TF1 (brain_network/...)')
    options = {'hanning_normalize': hanning_normalize, 'avgpool_padding': avgpool_padding}
    config = None
    if kind != 'checkpoint' and (use_ema or ignore_variables or network_config):
        raise CheckpointError('use_ema, ignore_variables and network_config apply to a TF1 '
                              'checkpoint; %s weights are not one (drop them)'
                              % ('random' if kind == 'random' else path))
    if name_map is not None:
        tf1_audio_names.variable_map(variant.tasks, name_map)  # a bad map fails before building
    if kind == 'checkpoint':
        if not variant.trained:
            raise CheckpointError(
                '%s is the untrained architecture: it loads only a converted .weights.h5 (e.g. a '
                'saved initialisation), not the TF1 checkpoint %s; use word_reduced_aliasing for '
                'the trained network' % (name, path))
        config_path = network_config or tf1_network_config.default_path(name, path)
        if config_path:
            config = _Config(config_path, tf1_network_config.read(config_path))
            options['hanning_normalize'], options['avgpool_padding'] = _config_options(
                config, path, hanning_normalize, avgpool_padding)
        shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map()
        dense_scope = 'fc_intermediate'
        if config:
            dense_scope = next((x.name for x in config.layers if x.kind == 'dense'), dense_scope)
        dense = tf1_audio_names.load_overrides(name_map).get(
            'fc_intermediate/kernel', '%s/%s/kernel' % (tf1_audio_names.TF1_SCOPE, dense_scope))
        if len(shapes.get(dense, ())) == 2:
            found = padding_from_flatten_size(int(shapes[dense][0]), path)
            options['avgpool_padding'] = _agree(options['avgpool_padding'], found,
                                                'avgpool_padding', path)
    elif kind == 'h5':
        attrs, rows = read_weights_file_info(path)
        _check_h5_network(path, attrs, name, variant)
        if rows is not None:
            found = padding_from_flatten_size(rows, path)
            options['avgpool_padding'] = _agree(avgpool_padding, found, 'avgpool_padding', path)
        stored_normalize = attrs['build_options'].get('hanning_normalize')
        if hanning_normalize is None and stored_normalize is not None:
            options['hanning_normalize'] = bool(stored_normalize)
    if options['avgpool_padding'] is None:
        options['avgpool_padding'] = 'SAME'
    if options['hanning_normalize'] is None:
        options['hanning_normalize'] = False  # the original function's default (SPEC §2)
    return kind, path, options, config


_Config = collections.namedtuple('_Config', 'path layers')


def _load_tf1(model, variant, path, name_map, config, ignore_variables, use_ema):
    """Assign ``model`` from a TF1 checkpoint; returns the one-line report of what was skipped.

    With a configuration pickle, the built model is first compared with it
    layer by layer, and the pickle's layer names give the TF1 scopes; the
    caller's ``name_map`` overrides both.
    """
    overrides = {}
    if config:
        tf1_network_config.check(config.layers, model, config.path)
        overrides = tf1_network_config.name_overrides(config.layers, model, variant.tasks)
    overrides.update(tf1_audio_names.load_overrides(name_map))
    plain = tf1_audio_names.variable_map(variant.tasks, overrides)
    shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    mapping, ema_used = plain, 0
    if use_ema:
        mapping, ema_used = checkpoints.with_moving_averages(plain, shapes, path)
    values = _read_tf1(path, mapping)
    if all(v in values for v in mapping.values()):  # else assign_by_name lists what is missing
        _check_accounted(values, plain.values(), path, ignore_variables)
    checkpoints.assign_by_name(model, mapping, values, path)
    used = set(mapping.values()) | set(plain.values())
    heads = _other_heads(shapes, used)
    # What is left in the scope passed the check above, so the user ignored it on purpose.
    deliberately = checkpoints.unaccounted(shapes, used | set(heads), tf1_audio_names.TF1_SCOPE)
    outside = sorted(n for n in shapes if not n.startswith(tf1_audio_names.TF1_SCOPE + '/')
                     and bookkeeping.kind_of(n) is None)
    notes = []
    if heads:
        notes.append('heads of other tasks, not read: %s' % ', '.join(heads))
    if deliberately:
        notes.append('ignored on purpose: %s' % ', '.join(deliberately))
    if config:
        notes.append('layer names and options from %s' % config.path)
    return bookkeeping.report(path, [n for n in shapes if n not in used], shapes, ema_used=ema_used,
                              outside=outside, notes=notes)


# ------------------------------------------------------------ architecture
class SeededGlorotUniform(keras.initializers.Initializer):
    """Glorot-uniform (the ``tf.layers`` kernel default) drawn by numpy from a fixed seed.

    ``limit = sqrt(6 / (fan_in + fan_out))`` with the receptive field counted
    in both fans, as TF1 and Keras do. numpy's PCG64 makes the values the same
    on every TF version and device, and is several times faster than TF's
    stateless RNG for the 23040 x 4096 dense kernel.
    """

    def __init__(self, seed):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        shape = tuple(int(n) for n in shape)
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.float32(np.sqrt(6.0 / (fan_in + fan_out)))
        values = np.random.default_rng(self.seed).random(shape, dtype=np.float32)
        values *= 2 * limit
        values -= limit
        return tf.convert_to_tensor(values, dtype=dtype or 'float32')

    def get_config(self):
        return {'seed': self.seed}


class _Initialisers:
    """Keras initialisers: ``tf.layers`` defaults (Glorot-uniform kernels, zero biases).

    Each layer's seed is derived from the network seed and the layer name, so
    a build is reproducible and does not depend on any global RNG. When
    weights are loaded afterwards the kernels start at zero instead (cheaper).
    """

    def __init__(self, seed, random):
        self.seed = int(seed)
        self.random = random

    def kernel(self, layer_name):
        if not self.random:
            return 'zeros'
        return SeededGlorotUniform([self.seed, zlib.crc32(layer_name.encode())])


def _conv(x, stages, index, filters, kernel_size, strides, init):
    """conv_<i> (SAME) + ReLU: stages ``conv_<i>_pre_relu`` and ``conv_<i>``."""
    name = 'conv_%d' % index
    # conv_0 reads the one-channel cochleagram: SingleChannelConv2D is Conv2D with a faster
    # input gradient there (and plain Conv2D elsewhere).
    pre = SingleChannelConv2D(filters, kernel_size, strides=strides, padding='same', name=name,
                              kernel_initializer=init.kernel(name), bias_initializer='zeros')(x)
    stages[name + '_pre_relu'] = pre
    stages[name] = keras.layers.ReLU(name='relu_%d' % index)(pre)
    return stages[name]


def _batch_norm(x, stages, index):
    name = 'batch_norm_%d' % index
    # tf.layers.batch_normalization defaults (epsilon 1e-3); non-trainable -> always inference.
    stages[name] = keras.layers.BatchNormalization(axis=-1, epsilon=1e-3, name=name,
                                                   trainable=False)(x)
    return stages[name]


def _pool(x, stages, name, stride, pool_size, architecture, normalize):
    if architecture == 'aliased':
        layer = keras.layers.MaxPooling2D(pool_size=pool_size, strides=stride, padding='same',
                                          name=name)
    else:
        layer = HanningPooling(strides=stride, pool_size=pool_size, normalize=normalize,
                               padding='SAME', name=name)
    stages[name] = layer(x)
    return stages[name]


def _body(waveform, architecture, options, init, envelope_impl='banded'):
    """Stages from the waveform to ``fc_intermediate`` (see the module docstring)."""
    stages = collections.OrderedDict()
    normalize = options['hanning_normalize']
    x = stages['cochleagram'] = tfcochleagram.Cochleagram(
        SAMPLE_RATE, name='cochleagram', envelope_impl=envelope_impl,
        **tfcochleagram.WORD_CONFIG)(waveform)

    x = _batch_norm(x, stages, 0)
    if architecture == 'aliased':
        x = _conv(x, stages, 0, 96, (7, 14), 3, init)
        x = _pool(x, stages, 'pool_0', 2, (2, 5), architecture, normalize)
    else:
        x = _conv(x, stages, 0, 96, (7, 14), 1, init)
        x = _pool(x, stages, 'pool_0_0', 3, 12, architecture, normalize)  # the conv's stride 3
        x = _pool(x, stages, 'pool_0_1', 2, 8, architecture, normalize)   # was max-pool s2
    x = _batch_norm(x, stages, 1)
    if architecture == 'aliased':
        x = _conv(x, stages, 1, 256, (4, 8), 2, init)
        x = _pool(x, stages, 'pool_1', 2, (2, 5), architecture, normalize)
    else:
        x = _conv(x, stages, 1, 256, (4, 8), 1, init)
        x = _pool(x, stages, 'pool_1_0', 2, 8, architecture, normalize)   # the conv's stride 2
        x = _pool(x, stages, 'pool_1_1', 2, 8, architecture, normalize)   # was max-pool s2
    x = _batch_norm(x, stages, 2)
    x = _conv(x, stages, 2, 512, (2, 5), 1, init)
    x = _conv(x, stages, 3, 1024, (2, 5), 1, init)
    x = _conv(x, stages, 4, 512, (2, 5), 1, init)

    x = stages['avg_pool'] = keras.layers.AveragePooling2D(
        pool_size=(2, 5), strides=2, padding=options['avgpool_padding'].lower(),
        name='avg_pool')(x)
    x = stages['flatten'] = keras.layers.Flatten(name='flatten')(x)
    pre = stages['fc_intermediate_pre_relu'] = keras.layers.Dense(
        4096, name='fc_intermediate', kernel_initializer=init.kernel('fc_intermediate'),
        bias_initializer='zeros')(x)
    stages['fc_intermediate'] = keras.layers.ReLU(name='relu_fc_intermediate')(pre)
    return stages


def _heads(stages, tasks, init):
    """Output layers (dropout omitted: identity at inference); ``logits`` is the first task's."""
    x = stages['fc_intermediate']
    for task in tasks:
        layer_name = tf1_audio_names.head_layer_name(task)
        stages['logits_%s' % task] = keras.layers.Dense(
            N_CLASSES[task], name=layer_name, kernel_initializer=init.kernel(layer_name),
            bias_initializer='zeros')(x)
    logits = {'logits': stages['logits_%s' % tasks[0]]}
    if len(tasks) == 1:
        del stages['logits_%s' % tasks[0]]
    return collections.OrderedDict(list(stages.items()) + list(logits.items()))


RELU_STAGES = {name: [name + '_pre_relu']
               for name in ['conv_0', 'conv_1', 'conv_2', 'conv_3', 'conv_4', 'fc_intermediate']}


# ------------------------------------------------------------------ builders
def build_audio_network(name, weights='random', seed=0, hanning_normalize=None,
                        avgpool_padding=None, name_map=None, envelope_impl='banded',
                        ignore_variables=None, use_ema=False, network_config=None):
    """Build one of :data:`VARIANTS` as a :class:`MetamerNetwork`.

    Args:
      name: a key of :data:`VARIANTS`.
      weights: ``'random'`` (seeded ``tf.layers``-default initialisation), a TF1
        checkpoint prefix of the original code (variables ``brain_network/...``),
        a converted ``*.weights.h5``, or ``'default'`` for
        ``checkpoints/<name>.weights.h5``.
      seed: seed of the random initialisation.
      hanning_normalize: divide the Hanning kernels by their sum (SPEC UNKNOWN).
        None: the value stored in a converted file, else False (the original
        function's default). Ignored by ``word_aliased``, which has no Hanning pooling.
      avgpool_padding: ``'SAME'`` or ``'VALID'`` for the avgpool before flatten
        (SPEC UNKNOWN). None: inferred from the weights' ``fc_intermediate/kernel``
        rows (23040 -> SAME, 14336 -> VALID), ``'SAME'`` for random weights.
      name_map: overrides of the TF1 name map (dict or JSON path, see
        :mod:`model_metamers.networks.weights.tf1_audio_names`); used for TF1 checkpoints.
      envelope_impl: the cochleagram's ``envelope_impl``: ``'banded'`` (faster) or
        ``'full'`` (the original's inverse FFTs and their round-off as well); see
        :class:`tfcochleagram.CochleagramGraph`.
      ignore_variables: TF1 checkpoints: ``brain_network/`` variables (names,
        scopes or fnmatch patterns; a list or comma-separated string) that the
        model deliberately does not use. Any other unmapped variable of the
        network is an error; training bookkeeping (:mod:`bookkeeping`) is
        skipped and reported in ``info['weights_report']``.
      use_ema: TF1 checkpoints: read weights from their ExponentialMovingAverage
        shadows where present.
      network_config: TF1 checkpoints: the release's network-configuration
        pickle (read without running it); default ``word_network_<arch>.pckl``
        beside the checkpoint when it exists. Its layer names become the TF1
        scopes, its Hanning / avgpool settings the options, and every layer
        is checked against the build (:mod:`tf1_network_config`).

    Raises :class:`CheckpointError` when the weights are missing or do not fit
    (listing expected and available variable names), :class:`NameMapError`
    for a bad name map, :class:`AudioNetworkOptionError` for a bad option.
    """
    if name not in VARIANTS:
        raise AudioNetworkOptionError('unknown audio network %r; audio networks: %s'
                                      % (name, ', '.join(VARIANTS)))
    variant = VARIANTS[name]
    kind, path, options, config = _plan_weights(
        name, variant, weights, _check_normalize(hanning_normalize),
        _check_padding(avgpool_padding), name_map, network_config, ignore_variables, use_ema)

    init = _Initialisers(seed, random=(kind == 'random'))
    waveform = keras.Input(shape=(SIGNAL_LENGTH,), name='waveform')
    if envelope_impl not in tfcochleagram.ENVELOPE_IMPLS:
        raise AudioNetworkOptionError('envelope_impl must be one of %s, got %r'
                                      % (', '.join(tfcochleagram.ENVELOPE_IMPLS),
                                         envelope_impl))
    stages = _heads(_body(waveform, variant.architecture, options, init, envelope_impl),
                    variant.tasks, init)

    info = {'architecture': variant.architecture, 'tasks': list(variant.tasks),
            'description': variant.description, 'weights': kind if kind == 'random' else path,
            'build_options': dict(options), 'envelope_impl': envelope_impl,
            'task_keys': {t: tf1_audio_names.TASK_KEYS[t] for t in variant.tasks}}
    if kind == 'random':
        info['seed'] = int(seed)
    if name_map is not None:
        info['name_map_overrides'] = tf1_audio_names.load_overrides(name_map)
    if len(variant.tasks) > 1:
        info['class_names_by_task'] = {t: class_names_for(t) for t in variant.tasks}

    net = MetamerNetwork(
        name, waveform, stages, METAMER_LAYERS[variant.architecture],
        class_names_for(variant.tasks[0]), 'audio', relu_stages=RELU_STAGES,
        aliases={'visualization_input': 'cochleagram'}, logits_stage='logits',
        sample_rate=SAMPLE_RATE, default_learning_rate=0.001, default_iterations=15000,
        representation_stage='cochleagram', info=info)

    if kind == 'checkpoint':
        report = _load_tf1(net.model, variant, path, name_map, config, ignore_variables, use_ema)
        if report:
            net.info['weights_report'] = report
        if config:
            net.info['network_config'] = config.path
    elif kind == 'h5':
        checkpoints.load_weights_h5(net.model, path)
    return net


def build_word_aliased(weights='random', seed=0, **options):
    """Word-trained CNN with strided convs and max-pooling (Table S2); 794 word logits."""
    return build_audio_network('word_aliased', weights, seed, **options)


def build_word_reduced_aliasing(weights='random', seed=0, **options):
    """Word-trained CNN with Hanning pooling (Table S3); 794 word logits."""
    return build_audio_network('word_reduced_aliasing', weights, seed, **options)


def build_word_reduced_aliasing_random(weights='random', seed=0, **options):
    """The Table S3 architecture, untrained; loads only ``.weights.h5`` files besides ``'random'``."""
    return build_audio_network('word_reduced_aliasing_random', weights, seed, **options)


def build_audioset_reduced_aliasing(weights='random', seed=0, **options):
    """Table S3 architecture trained on AudioSet; 517 logits (generic class names)."""
    return build_audio_network('audioset_reduced_aliasing', weights, seed, **options)


def build_word_audioset_reduced_aliasing(weights='random', seed=0, **options):
    """Table S3 architecture with two heads: ``logits`` = ``logits_word`` (794), ``logits_audioset`` (517)."""
    return build_audio_network('word_audioset_reduced_aliasing', weights, seed, **options)
