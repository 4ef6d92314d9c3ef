"""Metamers of your own network: any Keras 3 functional or sequential model as a MetamerNetwork.

:func:`from_keras` traces the user's model layer by layer onto a new input, so
that every layer output becomes a named stage:

* a nested model's layers are flattened as ``outer/inner`` (the nested model's
  own name is an alias of its output);
* a layer with ``activation='relu'`` (``Conv2D``, ``Dense``, ...) is split into
  a copy with a linear activation (stage ``<layer>/preactivation``) and a ReLU
  (stage ``<layer>``, the value the layer gave), so that synthesis can match it
  through the modified-gradient ReLU, as the paper does; a separate ``ReLU`` or
  ``Activation('relu')`` layer is used as it is, its input being the
  pre-activation;
* other activations (``tanh``, ``gelu``, ``LeakyReLU``, ...) are matched as they
  are; :meth:`MetamerNetwork.matching` says so and result files record it.

The default metamer layers are every activation output, in network order. The
model's output is the logits stage (its argmax is the predicted class).

Audio models take a waveform ``[T]`` (give the sample rate), or a cochleagram,
in which case ``front_end='word'`` (or ``'kws'``) puts the paper's
:class:`tfcochleagram.Cochleagram` in front of the model so the metamer is a
waveform; a model that already starts with a ``Cochleagram`` layer gets its
sample rate and cochleagram-domain synthesis from it. Image models take
``[S, S, 3]`` pixels in [0, 1] (put any other preprocessing inside the model).

:func:`load` turns the command line's ``--network=path/to/model.keras`` or
``--network=package.module:function`` into a network and the SHA-1 its
results record. The tracing uses Keras' functional graph walk
(``Function._run_through_graph``, Keras 3.6, pinned in setup.py).
"""

import collections
import hashlib
import importlib
import json
import os
import re
import sys

import keras
import numpy as np
import tensorflow as tf

import tfcochleagram
from model_metamers.errors import UserError
from model_metamers.fileio import hash_file
from model_metamers.networks.base import MetamerNetwork

PREACTIVATION = 'preactivation'
SOURCE = 'keras model'  # network.info['source'] of a user's own model
MODEL_SUFFIXES = ('.keras', '.h5')
_FUNCTION_SPEC = re.compile(r'^[A-Za-z_][\w.]*:[A-Za-z_]\w*$')


class CustomNetworkError(UserError, ValueError):
    """A user's model that cannot be made into a metamer network (the message says why and what to do)."""


# ------------------------------------------------------------------ front ends
def front_ends():
    """``{name: (sample rate Hz, Cochleagram parameters)}`` of the named cochleagram front ends."""
    from model_metamers.networks.audio import kws

    return {'word': (tfcochleagram.WORD_SR, dict(tfcochleagram.WORD_CONFIG)),
            'kws': (kws.SAMPLE_RATE, dict(kws.COCHLEAGRAM_CONFIG))}


def _front_end_input(name, model_shape):
    """``(waveform Input, cochleagram tensor, sample rate)`` of front end ``name`` for a model
    taking cochleagrams of ``model_shape`` (``[n_filters, frames, 1]``)."""
    configs = front_ends()
    if name not in configs:
        raise CustomNetworkError('unknown cochleagram front end %r; named front ends: %s'
                                 % (name, ', '.join(configs)))
    sr, params = configs[name]
    if len(model_shape) != 3 or model_shape[1] is None:
        raise CustomNetworkError('the %r front end gives cochleagrams [filters, frames, 1]; the model '
                                 'takes %s: give it a model whose input is a cochleagram'
                                 % (name, list(model_shape)))
    samples = int(round(model_shape[1] * sr / params['ENV_SR']))
    waveform = keras.Input((samples,), name='waveform')
    coch = tfcochleagram.Cochleagram(sr, name='cochleagram', **params)(waveform)
    if tuple(coch.shape[1:]) != tuple(model_shape):
        raise CustomNetworkError('the %r front end makes cochleagrams of shape %s from %.3g s at %d Hz, '
                                 'but the model takes %s: build the model for %s'
                                 % (name, list(coch.shape[1:]), samples / sr, sr, list(model_shape),
                                    list(coch.shape[1:])))
    return waveform, coch, sr


# --------------------------------------------------------------------- tracing
class _Trace:
    """Stages, aliases and ReLU structure of a model traced onto a new input."""

    def __init__(self):
        self.stages = collections.OrderedDict()
        self.aliases = {}
        self.relu_stages = {}
        self.activations = collections.OrderedDict()  # stage -> activation name, for activation outputs
        self.tensor_stage = {}  # id(KerasTensor) -> stage name
        self.layer_names = set()
        self.cochleagram = None  # (stage, sample rate) of a Cochleagram layer

    def unique_layer_name(self, name):
        """A layer name not yet used in the traced graph (Keras needs them unique)."""
        base = name.replace('/', '_')
        candidate, k = base, 1
        while candidate in self.layer_names:
            k += 1
            candidate = '%s_%d' % (base, k)
        self.layer_names.add(candidate)
        return candidate

    def add(self, name, tensor):
        """Name ``tensor`` as a stage (an alias when it already has a stage); returns the stage name."""
        known = self.tensor_stage.get(id(tensor))
        if known is not None:
            if name != known:
                self.aliases[name] = known
            return known
        stage, k = name, 1
        while stage in self.stages or stage in self.aliases:
            k += 1
            stage = '%s#%d' % (name, k)  # a layer called more than once
        self.stages[stage] = tensor
        self.tensor_stage[id(tensor)] = stage
        return stage


def _activation_name(layer):
    """The activation a layer applies at its output (``'relu'``, ``'tanh'``, ...), or None."""
    if isinstance(layer, keras.layers.ReLU):
        cfg = layer.get_config()
        plain = (not cfg.get('max_value') and not cfg.get('negative_slope')
                 and not cfg.get('threshold'))
        return 'relu' if plain else 'relu (clipped or leaky)'
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, '__name__', str(layer.activation))
    if isinstance(layer, (keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU,
                          keras.layers.Softmax)):
        return type(layer).__name__
    activation = getattr(layer, 'activation', None)
    if activation is None or activation is keras.activations.linear:
        return None
    return getattr(activation, '__name__', str(activation))


class _Renamed(keras.layers.Layer):
    """A user's layer under another name (two nested models may each have a ``conv1``)."""

    def __init__(self, inner, name):
        super().__init__(name=name, trainable=False)
        self.inner = inner

    def call(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def _is_functional(model):
    from keras.src.models.functional import Functional
    return isinstance(model, Functional)


def _is_container(layer):
    return isinstance(layer, keras.Sequential) or _is_functional(layer)


def _trace_model(model, inputs, trace, prefix):
    """Call every layer of ``model`` on ``inputs``, recording stages named ``prefix + layer``."""
    def call(layer, *args, **kwargs):
        return _call_layer(layer, args, kwargs, trace, prefix)

    if isinstance(model, keras.Sequential):
        x = inputs
        for layer in model.layers:
            x = call(layer, x)
        return x
    return model._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=call)


def _call_layer(layer, args, kwargs, trace, prefix):
    name = prefix + layer.name
    if _is_container(layer):
        out = _trace_model(layer, args[0] if len(args) == 1 else list(args), trace, name + '/')
        for k, tensor in enumerate(tf.nest.flatten(out)):
            trace.add(name if k == 0 else '%s[%d]' % (name, k), tensor)
        return out
    activation = _activation_name(layer)
    if activation == 'relu' and not isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
        out = _split_relu(layer, args, kwargs, trace, name)
    else:
        used = layer if layer.name not in trace.layer_names else _Renamed(
            layer, trace.unique_layer_name(layer.name))
        trace.layer_names.add(layer.name)
        out = used(*args, **kwargs)
        flat = tf.nest.flatten(out)
        for k, tensor in enumerate(flat):
            stage = trace.add(name if len(flat) == 1 else '%s[%d]' % (name, k), tensor)
        if len(flat) == 1 and activation is not None:
            trace.activations[stage] = activation
            pre = trace.tensor_stage.get(id(tf.nest.flatten(args)[0]))
            if activation == 'relu' and pre is not None:
                trace.relu_stages[stage] = [pre]
        if isinstance(layer, tfcochleagram.Cochleagram) and trace.cochleagram is None:
            trace.cochleagram = (stage, layer.sr)
    return out


def _split_relu(layer, args, kwargs, trace, name):
    """``layer`` (``activation='relu'``) as a linear copy and a ReLU: stages ``name/preactivation``
    and ``name``. The copy gets the layer's weight values."""
    config = dict(layer.get_config(), activation='linear',
                  name=trace.unique_layer_name(layer.name + '_' + PREACTIVATION))
    try:
        shape = tf.nest.map_structure(lambda t: t.shape, args[0])
        if not layer.built:  # an unbuilt sequential model: its layers get their weights now
            layer.build(shape)
        linear = type(layer).from_config(config)
        linear.build(shape)
        if len(linear.weights) != len(layer.weights):
            raise ValueError('the copy has %d weights, the layer %d' % (len(linear.weights),
                                                                        len(layer.weights)))
        for copy, original in zip(linear.weights, layer.weights):
            copy.assign(original)
    except Exception as exc:  # a custom layer without a usable get_config
        raise CustomNetworkError(
            'cannot split layer %r (%s, activation relu) into its pre-activation and ReLU (%s); '
            'build it with activation=None followed by a keras.layers.ReLU layer'
            % (name, type(layer).__name__, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    pre = linear(*args, **kwargs)
    pre_stage = trace.add('%s/%s' % (name, PREACTIVATION), pre)
    out = keras.layers.ReLU(name=trace.unique_layer_name(layer.name))(pre)
    stage = trace.add(name, out)
    trace.activations[stage] = 'relu'
    trace.relu_stages[stage] = [pre_stage]
    return out


# ------------------------------------------------------------------- wrapping
def _model_input_shape(model, input_shape):
    """The shape of one stimulus (no batch axis) the model is traced with."""
    if isinstance(model, keras.Sequential):
        try:
            inputs = model.inputs
        except (AttributeError, ValueError):
            inputs = None
    elif _is_functional(model):
        inputs = model.inputs
    else:
        raise CustomNetworkError(
            'model %r is a subclassed keras.Model: its layers cannot be reached as symbolic outputs; '
            'build it with the functional API (keras.Model(inputs, outputs)) or as a '
            'keras.Sequential, or wrap it yourself in a MetamerNetwork' % model.name)
    if inputs is not None and len(inputs) != 1:
        raise CustomNetworkError('model %r has %d inputs (shapes %s); metamers need a model with one '
                                 'input (the stimulus): wrap it so the others are fixed inside'
                                 % (model.name, len(inputs), ', '.join(str(list(t.shape[1:]))
                                                                       for t in inputs)))
    shape = tuple(input_shape) if input_shape is not None else (
        tuple(inputs[0].shape[1:]) if inputs is not None else None)
    if shape is None or any(d is None for d in shape):
        raise CustomNetworkError('model %r has no fixed input shape (%s); pass --input_shape '
                                 '(input_shape=), e.g. --input_shape=224,224,3 for images or '
                                 '--input_shape=40000 for a 2 s waveform at 20 kHz'
                                 % (model.name, 'not built' if shape is None else
                                    '[%s]' % ', '.join('None' if d is None else str(d) for d in shape)))
    return tuple(int(d) for d in shape)


def _infer_modality(shape, modality, trace, sample_rate):
    if modality not in (None, 'audio', 'image'):
        raise CustomNetworkError("modality must be 'audio' or 'image', got %r" % (modality,))
    if modality is None:
        if trace.cochleagram is not None or len(shape) == 1:
            modality = 'audio'
        elif len(shape) == 3 and shape[-1] == 3:
            modality = 'image'
        else:
            raise CustomNetworkError('cannot tell whether a model taking %s is an audio or an image '
                                     'model; pass --modality=audio or --modality=image (a cochleagram '
                                     'model also needs a front end: --front_end=word)' % (list(shape),))
    if modality == 'image' and (len(shape) != 3 or shape[-1] != 3 or shape[0] != shape[1]):
        raise CustomNetworkError('image models must take square RGB images [S, S, 3] (values in [0, 1], '
                                 'preprocessing inside the model); this one takes %s: pass '
                                 '--input_shape=S,S,3 or put a resize inside the model' % (list(shape),))
    if modality == 'audio':
        if len(shape) != 1:
            raise CustomNetworkError('audio models must take a waveform [samples]; this one takes %s: '
                                     'for a cochleagram model pass --front_end=word (or kws)'
                                     % (list(shape),))
        if trace.cochleagram is not None:
            if sample_rate is not None and int(sample_rate) != int(trace.cochleagram[1]):
                raise CustomNetworkError('--sample_rate=%s disagrees with the model\'s cochleagram '
                                         '(%s Hz); leave --sample_rate out'
                                         % (sample_rate, trace.cochleagram[1]))
            sample_rate = trace.cochleagram[1]
        if sample_rate is None:
            raise CustomNetworkError('an audio model needs its sample rate: pass --sample_rate '
                                     '(sample_rate=), e.g. --sample_rate=16000')
        sample_rate = int(sample_rate)
        if sample_rate <= 0:
            raise CustomNetworkError('--sample_rate must be a positive number of Hz, got %s'
                                     % sample_rate)
    return modality, sample_rate


def read_class_names(value, n_classes):
    """Class names from a list or a JSON file (a list, or ``{"classes": [...]}``); one per logit."""
    if value is None:
        return ['class_%d' % i for i in range(n_classes)]
    if isinstance(value, str):
        try:
            with open(os.path.expanduser(value), encoding='utf-8') as f:
                value = json.load(f)
        except OSError as exc:
            raise CustomNetworkError('cannot read --class_names %s (%s); give a JSON file holding '
                                     'a list of names' % (value, exc.strerror or exc)) from None
        except ValueError as exc:
            raise CustomNetworkError('--class_names %s is not JSON (%s); give a JSON list of names'
                                     % (value, exc)) from None
        if isinstance(value, dict):
            value = value.get('classes', value.get('class_names'))
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise CustomNetworkError('class names must be a JSON list of strings (or {"classes": [...]})')
    if len(value) != n_classes:
        raise CustomNetworkError('%d class names for %d logits; give one name per output unit'
                                 % (len(value), n_classes))
    return list(value)


def from_keras(model, layers=None, modality=None, class_names=None, sample_rate=None, name=None,
               input_shape=None, front_end=None, info=None):
    """Wrap a Keras 3 functional or sequential model as a :class:`MetamerNetwork`.

    Args:
      model: a ``keras.Model`` built with the functional API or ``keras.Sequential``
        (a subclassed model cannot be traced), with one input and one output
        (the logits, or any class scores: their argmax is the predicted class).
      layers: the metamer layers (stage names, ``outer/inner`` inside nested
        models); default every activation output in network order.
      modality: ``'audio'`` (input a waveform ``[T]``) or ``'image'`` (input
        ``[S, S, 3]`` in [0, 1]); inferred from the input shape when None.
      class_names: one name per output unit (a list, or a JSON file's path);
        default ``class_0 ...``.
      sample_rate: Hz, for a waveform model (taken from a ``Cochleagram`` layer or
        the front end when there is one).
      name: the network's name (output folder); default the model's name.
      input_shape: the stimulus shape without the batch axis, for a model whose
        input shape is not fixed (for a front end: the cochleagram's shape).
      front_end: ``'word'`` or ``'kws'``: the model takes cochleagrams and this
        named :class:`tfcochleagram.Cochleagram` is put in front of it.
      info: extra entries for ``network.info`` (recorded with results).

    Returns:
      A :class:`MetamerNetwork` sharing the model's weight values (layers split
      at a ReLU hold a copy of theirs).
    """
    if isinstance(model, MetamerNetwork):
        return model
    if not isinstance(model, keras.Model):
        kind = type(model).__module__.split('.')[0]
        hint = (' (a tf_keras / Keras 2 model: save it as .keras and load it with Keras 3)'
                if kind in ('tf_keras', 'tensorflow') else '')
        raise CustomNetworkError('expected a keras.Model, got %s%s' % (type(model).__name__, hint))
    shape = _model_input_shape(model, input_shape)
    trace = _Trace()
    if front_end:
        inputs, x, sr = _front_end_input(front_end, shape)
        trace.add('cochleagram', x)
        trace.cochleagram = ('cochleagram', sr)
        trace.layer_names.add('cochleagram')
    else:
        inputs = x = keras.Input(shape, name='stimulus')
    trace.layer_names.update({'stimulus', 'waveform'})
    try:
        outputs = _trace_model(model, x, trace, '')
    except UserError:
        raise
    except (ValueError, TypeError) as exc:
        raise CustomNetworkError('model %r cannot take an input of shape %s (%s); pass the right '
                                 '--input_shape' % (model.name, list(x.shape[1:]),
                                                    str(exc).strip().splitlines()[0])) from None
    flat = tf.nest.flatten(outputs)
    if len(flat) != 1:
        raise CustomNetworkError('model %r has %d outputs; metamers need one output (the class '
                                 'scores): wrap it so it returns one tensor' % (model.name, len(flat)))
    logits_stage = trace.tensor_stage[id(flat[0])]
    modality, sample_rate = _infer_modality(tuple(inputs.shape[1:]), modality, trace, sample_rate)
    n_out = flat[0].shape[1:]
    has_classes = len(n_out) == 1
    names = read_class_names(class_names, int(n_out[0])) if has_classes else []
    net_info = {'source': SOURCE, 'activations': dict(trace.activations),
                'has_classes': has_classes, 'check_gradients': True,
                'front_end': front_end or ''}
    net_info.update(info or {})
    default_layers = list(trace.activations) or [s for s in trace.stages if s != 'cochleagram']
    network_name = _safe_name(name or model.name)
    return MetamerNetwork(
        network_name, inputs, trace.stages, layers or default_layers, names, modality,
        relu_stages=trace.relu_stages, aliases=trace.aliases, logits_stage=logits_stage,
        sample_rate=sample_rate,
        representation_stage=trace.cochleagram[0] if trace.cochleagram else None, info=net_info)


# -------------------------------------------------------------------- loading
def is_spec(value):
    """Whether ``--network`` names a user's model (a file or ``module:function``), not a registered one."""
    value = str(value or '')
    return (value.endswith(MODEL_SUFFIXES) or os.sep in value or bool(_FUNCTION_SPEC.match(value))
            or (os.path.isfile(value)))


def is_own(network):
    """Whether ``network`` is a user's own model (made by :func:`from_keras`), not a registered one."""
    return network.info.get('source') == SOURCE


def _is_function_spec(spec):
    """``package.module:function`` (and no file of that name)."""
    return bool(_FUNCTION_SPEC.match(spec)) and not os.path.isfile(spec)


def _sha1_of_values(network, source):
    """SHA-1 of every weight value the network computes with (and of ``source``)."""
    digest = hashlib.sha1(source.encode())
    for variable in network.model.weights:
        digest.update(variable.path.encode() if hasattr(variable, 'path') else b'')
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable)).tobytes())
    return digest.hexdigest()


def network_name(spec):
    """The name a user's model runs under (its results folder): the model file's name without
    suffix, or the function's name; characters other than letters, digits, ``_.-`` become ``_``."""
    spec = os.path.expanduser(str(spec))
    if _is_function_spec(spec):
        base = spec.split(':')[1]
    else:
        base = os.path.splitext(os.path.basename(spec))[0]
    return _safe_name(base)


def _safe_name(name):
    return re.sub(r'[^\w.-]+', '_', str(name)) or 'model'


def fingerprint(network):
    """The SHA-1 results record of a user's network: its model file's (from :func:`load`), else
    that of its weight values (a network made in a notebook)."""
    return network.info.get('model_sha1') or _sha1_of_values(network, network.name)


def default_null_path(network):
    """Where ``--null_distribution=auto`` looks for the null of a user's network: for
    ``--network=<model file>``, ``<model file without suffix>.null.h5`` beside it; for
    ``module:function`` (or a network made in a notebook), ``<name>.null.h5`` in the working folder."""
    spec = network.info.get('model_spec')
    if spec is None or _is_function_spec(spec):
        return os.path.abspath(network.name + '.null.h5')
    return os.path.splitext(spec)[0] + '.null.h5'


def _load_file(path):
    if not os.path.isfile(path):
        raise CustomNetworkError('no model file %s; give a saved Keras model (model.save(\'x.keras\')) '
                                 'or package.module:function' % path)
    if path.endswith('.weights.h5'):
        raise CustomNetworkError('%s holds weights only; --network takes a whole model (.keras), and '
                                 '--weights a weights file for it' % path)
    import model_metamers.layers  # noqa: F401  (the project's own serialisable layers)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        text = ' '.join(str(exc).split())
        if 'Lambda' in text or 'safe_mode' in text:
            hint = ('it holds a Lambda layer, whose code is not loaded from a file (safe mode); give '
                    'the model as package.module:function instead')
        elif 'Could not locate' in text or 'Unknown' in text:
            hint = ('it uses a layer class this process does not know; import the module defining it '
                    'by giving the model as package.module:function')
        else:
            hint = 'is it a Keras model saved with model.save(\'x.keras\')?'
        raise CustomNetworkError('cannot load the model %s: %s (%s)' % (path, hint, text[:200])) from None


def _load_function(spec):
    module_name, function_name = spec.split(':')
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:  # as `python -m` would: modules in the working folder can be named
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CustomNetworkError('cannot import %s for --network=%s (%s); run from the folder holding '
                                 'it or put it on PYTHONPATH' % (module_name, spec, exc)) from None
    finally:
        if added and sys.path and sys.path[0] == cwd:
            sys.path.pop(0)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise CustomNetworkError('%s has no function %r for --network=%s'
                                 % (module_name, function_name, spec))
    return function()


def load(spec, weights='auto', layers=None, modality=None, class_names=None, sample_rate=None,
         input_shape=None, front_end=None):
    """``(network, weights label, weights SHA-1)`` of ``--network=<spec>``.

    ``spec``: a saved Keras model (``.keras``, or a legacy ``.h5`` model) or
    ``package.module:function`` (a function taking no arguments and returning a
    ``keras.Model`` or a :class:`MetamerNetwork`). ``weights``: ``'auto'`` (the
    model's own) or a ``.weights.h5`` file loaded into the model. The SHA-1 is
    the model file's, else that of the weight values.
    """
    spec = os.path.expanduser(str(spec))
    if weights in (None, 'random'):
        raise CustomNetworkError('--weights=random does not apply to your own model; it runs with '
                                 'the weights it has (build it untrained for random weights)')
    from_file = not _is_function_spec(spec)
    model = _load_file(spec) if from_file else _load_function(spec)
    name = network_name(spec)
    weights_file = None if weights in ('auto', 'default') else os.path.expanduser(str(weights))
    if weights_file:
        try:
            (model.model if isinstance(model, MetamerNetwork) else model).load_weights(weights_file)
        except Exception as exc:
            raise CustomNetworkError('cannot load the weights %s into %s (%s); give weights saved '
                                     'from this model (model.save_weights)'
                                     % (weights_file, spec, ' '.join(str(exc).split())[:200])) from None
    if isinstance(model, MetamerNetwork):
        model.name = name  # results go to <output_dir>/<name>/ for either form of --network
        model.info.setdefault('check_gradients', True)
    network = from_keras(model, layers=layers, modality=modality, class_names=class_names,
                         sample_rate=sample_rate, name=name, input_shape=input_shape, front_end=front_end)
    network.info['model_spec'] = spec  # also for a MetamerNetwork, which from_keras returns as it is
    if weights_file:
        label, sha1 = str(weights), hash_file(weights_file).hexdigest()
    elif from_file:
        label, sha1 = spec, hash_file(spec).hexdigest()
    else:
        label, sha1 = spec, _sha1_of_values(network, spec)
    network.info['model_sha1'] = sha1
    return network, label, sha1
