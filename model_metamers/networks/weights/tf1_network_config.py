"""The original release's network-configuration pickles, read without running them.

The two word networks of the release come with ``word_network_aliased.pckl``
and ``word_network_reduced_aliasing.pckl``. The original build scripts
(jenellefeather/model_metamers ``build_word_network_aliased.py`` /
``build_word_network_reduced_aliasing.py``) load them with ``pickle.load``
and build the graph inside ``tf.variable_scope('brain_network')`` from two
parallel lists:

* ``pckled_network['graph_architecture'][i]``: a dict with ``'layer_type'``
  (e.g. ``'tf.layers.conv2d'``, ``'tf.layers.batch_normalization'``,
  ``'tf.layers.dropout'``, ``'tf.nn.relu'``, ``'hpool'``) and ``'args'`` (the
  keyword arguments, with ``'name'``: the TF1 layer scope, hence the checkpoint
  variable names);
* ``pckled_network['layer_list'][i]``: the callable, a ``functools.partial`` of
  a TF1 function (or of the lab's ``hanning_pooling`` /
  ``multi_fc_top_classification``) carrying the same arguments.

Here the file is read by :func:`model_metamers.safe_pickle.load_inert`: the
TF functions and partials become inert records, nothing is imported or run.
:func:`read` gives the layers; :func:`build_options` the Hanning normalisation
and avgpool padding they imply; :func:`name_overrides` the TF1 scope of every
Keras layer with variables (so the guessed batch-norm names are replaced by
the file's); :func:`compare` checks every layer against a Keras build and
:func:`comparison_table` shows the two side by side.

The layer-type strings the lab's framework knows are those of its later
``functions_brain_network.py`` (msaddler/pitchnet, same lineage); each maps to
a kind below. Dropout is the identity at inference and is skipped.
"""

import collections
import os

import keras

from model_metamers.errors import UserError
from model_metamers import safe_pickle
from model_metamers.layers import HanningPooling
from model_metamers.networks.weights import tf1_audio_names

ConfigLayer = collections.namedtuple('ConfigLayer', 'index layer_type kind name args function')
Spec = collections.namedtuple('Spec', 'kind name params keras')

KINDS = {
    'tf.layers.conv2d': 'conv',
    'tf.layers.batch_normalization': 'batch_norm',
    'tf.layers.dropout': 'dropout',
    'tf.nn.relu': 'relu',
    'tf.layers.max_pooling2d': 'max_pool',
    'hpool': 'hanning_pool',
    'tf.layers.average_pooling2d': 'avg_pool',
    'tf.nn.avg_pool': 'avg_pool',
    'tf.layers.flatten': 'flatten',
    'tf.layers.dense': 'dense',
    'multi_fc_top_classification': 'fc_top',
    'fc_top_classification': 'fc_top',
}
# Layers with variables: their ``args['name']`` is a checkpoint scope under brain_network/.
VARIABLE_KINDS = ('conv', 'batch_norm', 'dense', 'fc_top')
# tf.layers / the lab's helpers' defaults, for arguments a file leaves out.
DEFAULTS = {
    'conv': {'strides': 1, 'padding': 'valid'},
    'max_pool': {'padding': 'valid'},
    'avg_pool': {'padding': 'valid'},
    'hanning_pool': {'strides': 2, 'pool_size': 8, 'padding': 'SAME', 'normalize': False,
                     'sqrt_window': False},  # hanning_pooling()'s defaults (audio_cnn_helpers.py)
}
FILE_NAMES = {'word_aliased': 'word_network_aliased.pckl',
              'word_reduced_aliasing': 'word_network_reduced_aliasing.pckl'}


class NetworkConfigError(UserError, ValueError):
    """A network-configuration pickle that cannot be read or does not fit the Keras build."""


def default_path(network, checkpoint_prefix):
    """``<folder of the checkpoint>/word_network_<architecture>.pckl`` when that file exists, else None."""
    name = FILE_NAMES.get(network)
    if not name or not checkpoint_prefix:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint_prefix)), name)
    return path if os.path.isfile(path) else None


def _pair(value):
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value) if len(value) == 2 else tuple(int(v) for v in value)
    return (int(value), int(value))


def _partial_keywords(function):
    parts = function.partial_parts() if isinstance(function, safe_pickle.InertCall) else None
    return parts[2] if parts else {}


def read(path):
    """The layers of a configuration pickle, in order, as :class:`ConfigLayer` tuples."""
    data = safe_pickle.load_inert(path)
    where = 'network-configuration pickle %s' % path
    if not isinstance(data, dict) or 'graph_architecture' not in data:
        raise NetworkConfigError('%s has no graph_architecture (found %s); give the '
                                 'word_network_*.pckl of the release' % (
                                     where, ', '.join(map(str, data)) if isinstance(data, dict)
                                     else type(data).__name__))
    architecture = data['graph_architecture']
    functions = data.get('layer_list') or [None] * len(architecture)
    if not isinstance(architecture, (list, tuple)) or len(functions) != len(architecture):
        raise NetworkConfigError('%s: graph_architecture (%s entries) and layer_list (%s entries) '
                                 'must be lists of the same length' % (
                                     where, len(architecture) if hasattr(architecture, '__len__')
                                     else '?', len(functions)))
    layers = []
    for i, (entry, function) in enumerate(zip(architecture, functions)):
        if not isinstance(entry, dict) or not isinstance(entry.get('args'), dict) \
                or 'layer_type' not in entry or 'name' not in entry['args']:
            raise NetworkConfigError('%s: graph_architecture[%d] is not {"layer_type": ..., "args": '
                                     '{"name": ...}}: %r' % (where, i, entry))
        layer_type = str(entry['layer_type'])
        layers.append(ConfigLayer(i, layer_type, KINDS.get(layer_type, 'unknown'),
                                  str(entry['args']['name']), dict(entry['args']), function))
    return layers


def _params(layer):
    """The parameters compared with the Keras build, normalised (tuples, upper-case padding)."""
    args = dict(DEFAULTS.get(layer.kind, {}))
    args.update(layer.args)
    kind = layer.kind
    if kind == 'conv':
        return {'filters': int(args['filters']), 'kernel_size': _pair(args['kernel_size']),
                'strides': _pair(args['strides']), 'padding': str(args['padding']).upper()}
    if kind in ('max_pool', 'avg_pool'):
        size = args.get('pool_size', args.get('ksize'))
        return {'pool_size': _pair(size), 'strides': _pair(args['strides']),
                'padding': str(args['padding']).upper()}
    if kind == 'hanning_pool':
        return {'pool_size': _pair(args['pool_size']), 'strides': _pair(args['strides']),
                'padding': str(args['padding']).upper(), 'normalize': bool(args['normalize']),
                'sqrt_window': bool(args['sqrt_window'])}
    if kind == 'dense':
        return {'units': int(args['units'])}
    if kind == 'fc_top':
        classes = args.get('n_classes_dict') or _partial_keywords(layer.function).get('n_classes_dict')
        return {'units': tuple(int(classes[k]) for k in sorted(classes))} if classes else {}
    return {}


def build_options(layers, label='the network-configuration pickle'):
    """``{'hanning_normalize': bool or None, 'avgpool_padding': 'SAME'/'VALID' or None}`` from the file."""
    normalize = {_params(x)['normalize'] for x in layers if x.kind == 'hanning_pool'}
    if len(normalize) > 1:
        raise NetworkConfigError('%s mixes normalised and unnormalised Hanning pooling; the Keras '
                                 'build uses one setting for all' % label)
    padding = {_params(x)['padding'] for x in layers if x.kind == 'avg_pool'}
    if len(padding) > 1:
        raise NetworkConfigError('%s has avgpools with different padding %s' % (label, sorted(padding)))
    return {'hanning_normalize': normalize.pop() if normalize else None,
            'avgpool_padding': padding.pop() if padding else None}


# --------------------------------------------------------------- the Keras side
def keras_specs(model):
    """The Keras model's layers as :class:`Spec` in the file's terms (input and cochleagram left out)."""
    specs = []
    heads = []
    for layer in model.layers:
        name = layer.name
        if isinstance(layer, keras.layers.InputLayer) or name == 'cochleagram':
            continue
        if isinstance(layer, keras.layers.Conv2D):
            specs.append(Spec('conv', name, {
                'filters': int(layer.filters), 'kernel_size': tuple(layer.kernel_size),
                'strides': tuple(layer.strides), 'padding': layer.padding.upper()}, layer))
        elif isinstance(layer, keras.layers.BatchNormalization):
            specs.append(Spec('batch_norm', name, {}, layer))
        elif isinstance(layer, keras.layers.ReLU):
            specs.append(Spec('relu', name, {}, layer))
        elif isinstance(layer, HanningPooling):
            size = layer.pool_size
            specs.append(Spec('hanning_pool', name, {
                'pool_size': _pair(size), 'strides': _pair(layer.strides),
                'padding': str(layer.padding).upper(), 'normalize': bool(layer.normalize),
                'sqrt_window': False}, layer))
        elif isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
            kind = 'max_pool' if isinstance(layer, keras.layers.MaxPooling2D) else 'avg_pool'
            specs.append(Spec(kind, name, {'pool_size': tuple(layer.pool_size),
                                           'strides': tuple(layer.strides),
                                           'padding': layer.padding.upper()}, layer))
        elif isinstance(layer, keras.layers.Flatten):
            specs.append(Spec('flatten', name, {}, layer))
        elif isinstance(layer, keras.layers.Dense) and name.startswith('fc_top_'):
            heads.append(layer)
        elif isinstance(layer, keras.layers.Dense):
            specs.append(Spec('dense', name, {'units': int(layer.units)}, layer))
        else:
            specs.append(Spec('unknown', name, {'class': type(layer).__name__}, layer))
    if heads:
        # One multi-task fc_top in the file; its heads in sorted task-key order.
        by_key = sorted(heads, key=lambda h: tf1_audio_names.TASK_KEYS[h.name[len('fc_top_'):]])
        specs.append(Spec('fc_top', ','.join(h.name for h in by_key),
                          {'units': tuple(int(h.units) for h in by_key)}, by_key))
    return specs


def _aligned(layers, specs):
    """Pairs (file layer or None, Keras spec or None) in order, dropout left out of the file side."""
    used = [x for x in layers if x.kind != 'dropout']
    n = max(len(used), len(specs))
    return [(used[i] if i < len(used) else None, specs[i] if i < len(specs) else None)
            for i in range(n)]


def _fc_top_params(layer, spec):
    """The file's fc_top parameters; without n_classes_dict, its heads are taken from the build."""
    params = _params(layer)
    if not params and spec is not None:
        return dict(spec.params)
    return params


def compare(layers, model):
    """The differences between the file's layers and the Keras ``model``: a list of row indices.

    Compared per layer, in order: kind (conv / batch norm / ReLU / pooling /
    flatten / dense / heads) and every parameter of :func:`_params` (filters,
    kernel, strides, padding, pooling size and normalisation, units).
    """
    bad = []
    for row, (layer, spec) in enumerate(_aligned(layers, keras_specs(model))):
        if layer is None or spec is None or layer.kind != spec.kind:
            bad.append(row)
            continue
        params = _fc_top_params(layer, spec) if layer.kind == 'fc_top' else _params(layer)
        if params != spec.params:
            bad.append(row)
    return bad


def _describe(kind, params):
    return ' '.join([kind] + ['%s=%s' % (k, 'x'.join(map(str, v)) if isinstance(v, tuple) else v)
                              for k, v in sorted(params.items())])


def comparison_table(layers, model, path):
    """Side-by-side text: the file's layers against the Keras build, differences marked ``<>``."""
    bad = set(compare(layers, model))
    rows = []
    for row, (layer, spec) in enumerate(_aligned(layers, keras_specs(model))):
        left = '' if layer is None else '%s %s (%s)' % (
            layer.name, _describe(layer.kind, _params(layer) if layer.kind != 'unknown' else {}),
            layer.layer_type)
        right = '' if spec is None else '%s %s' % (spec.name, _describe(spec.kind, spec.params))
        rows.append((left, '<>' if row in bad else '==', right))
    width = max([len('pickle %s' % os.path.basename(path))] + [len(r[0]) for r in rows]) + 1
    lines = ['  %-*s    %s' % (width, 'pickle %s' % os.path.basename(path), 'Keras build')]
    lines += ['  %-*s %s %s' % (width, left, mark, right) for left, mark, right in rows]
    dropped = [x for x in layers if x.kind == 'dropout']
    if dropped:
        lines.append('  (dropout %s: the identity at inference, not built)'
                     % ', '.join(x.name for x in dropped))
    return '\n'.join(lines)


def check(layers, model, path):
    """Raise :class:`NetworkConfigError` with :func:`comparison_table` when anything differs."""
    bad = compare(layers, model)
    if bad:
        raise NetworkConfigError(
            'network-configuration pickle %s does not match the Keras build of %s in %d layer(s) '
            '(marked <>); the checkpoint is of another architecture than this network:\n%s'
            % (path, model.name, len(bad), comparison_table(layers, model, path)))


def name_overrides(layers, model, tasks):
    """``{Keras layer: 'brain_network/<file name>'}`` for every layer with variables.

    The heads' scopes are ``<fc_top name>_<i>``, i the task key's index in
    sorted order (``multi_fc_top_classification``); the file's
    ``n_classes_dict`` gives the keys when it is there, else the network's.
    """
    out = {}
    for layer, spec in _aligned(layers, keras_specs(model)):
        if layer is None or spec is None or layer.kind != spec.kind:
            continue
        if layer.kind in ('conv', 'batch_norm', 'dense'):
            out[spec.name] = '%s/%s' % (tf1_audio_names.TF1_SCOPE, layer.name)
        elif layer.kind == 'fc_top':
            classes = (layer.args.get('n_classes_dict')
                       or _partial_keywords(layer.function).get('n_classes_dict'))
            keys = sorted(classes) if classes else sorted(tf1_audio_names.TASK_KEYS[t] for t in tasks)
            for task in tasks:
                key = tf1_audio_names.TASK_KEYS[task]
                if key in keys:
                    out[tf1_audio_names.head_layer_name(task)] = '%s/%s_%d' % (
                        tf1_audio_names.TF1_SCOPE, layer.name, keys.index(key))
    return out


def describe(layers):
    """The file's layers as text, one per line (for ``convert_checkpoint --inspect``)."""
    lines = []
    for layer in layers:
        args = ', '.join('%s=%r' % kv for kv in sorted(layer.args.items()) if kv[0] != 'name')
        func = ('' if layer.function is None else '  [%r]' % (layer.function,))
        lines.append('  %2d  %-30s %-18s %s%s' % (layer.index, layer.layer_type, layer.name, args,
                                                  func))
    return '\n'.join(lines)
