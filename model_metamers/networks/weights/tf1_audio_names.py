"""Which TF1 checkpoint variable fills which Keras variable of the audio networks.

The published word networks were built by the original code inside
``tf.variable_scope('brain_network')`` from a pickled list of ``tf.layers``
calls, so every variable is ``brain_network/<layer name>/<variable>``.
Only some layer names are known from the original build scripts; the rest
are UNKNOWN (SPEC §2) and are given here as defaults a user can override.

The table below is the whole contract. Keras layer (left) -> TF1 layer scope
(right), with where the TF1 name comes from:

====================  ==============================  ===========================================
Keras layer           TF1 layer scope                 source of the TF1 name
====================  ==============================  ===========================================
batch_norm_0          brain_network/batch_norm_0      UNKNOWN; the lab's naming (``batch_norm_<i>``)
conv_0                brain_network/conv_0            original build scripts (``nets['conv_0']``)
batch_norm_1          brain_network/batch_norm_1      UNKNOWN; as above
conv_1                brain_network/conv_1            original build scripts
batch_norm_2          brain_network/batch_norm_2      UNKNOWN; as above
conv_2 .. conv_4      brain_network/conv_2 .. conv_4  original build scripts
fc_intermediate       brain_network/fc_intermediate   original build scripts
fc_top_<task>         brain_network/fc_top_<i>        ``multi_fc_top_classification``: i = index
                                                      of the task key in sorted order
====================  ==============================  ===========================================

Task keys: word ``'/stimuli/word_int'`` (original build scripts); AudioSet
``'/stimuli/labels_binary_via_int'`` (UNKNOWN). The AudioSet key sorts before
the word key, so in the two-head network AudioSet is ``fc_top_0`` and word is
``fc_top_1``; a single-task network has only ``fc_top_0``.

Variables per layer: conv / dense ``kernel`` and ``bias``; batch norm
``gamma``, ``beta``, ``moving_mean``, ``moving_variance`` (``tf.layers``
names, which are also Keras' names).

Overrides (``name_map=`` of the builders, ``--name_map`` of
``python -m model_metamers.convert_checkpoint``): a dict, or the path of a JSON
file holding one object, with entries of two kinds:

* ``"<keras layer>": "<TF1 layer scope>"``, e.g.
  ``{"batch_norm_1": "brain_network/batch_normalization_1"}``: every variable
  of the layer is looked up under the new scope;
* ``"<keras layer>/<variable>": "<TF1 variable>"`` for a single variable,
  e.g. ``{"batch_norm_1/gamma": "brain_network/bn1/scale"}`` (applied after
  the layer entries).
"""

import json
import os

from model_metamers.errors import UserError

TF1_SCOPE = 'brain_network'

WORD_TASK = '/stimuli/word_int'
AUDIOSET_TASK = '/stimuli/labels_binary_via_int'  # UNKNOWN (SPEC §2); override via name_map
TASK_KEYS = {'word': WORD_TASK, 'audioset': AUDIOSET_TASK}

CONV_VARIABLES = ('kernel', 'bias')
BATCH_NORM_VARIABLES = ('gamma', 'beta', 'moving_mean', 'moving_variance')

# Keras layer -> (TF1 layer name under brain_network/, variables, where the name comes from).
# The same for the aliased and the reduced-aliasing architectures: pooling has no variables.
BODY_LAYERS = (
    ('batch_norm_0', 'batch_norm_0', BATCH_NORM_VARIABLES, 'UNKNOWN (lab convention batch_norm_<i>)'),
    ('conv_0', 'conv_0', CONV_VARIABLES, 'original build scripts'),
    ('batch_norm_1', 'batch_norm_1', BATCH_NORM_VARIABLES, 'UNKNOWN (lab convention batch_norm_<i>)'),
    ('conv_1', 'conv_1', CONV_VARIABLES, 'original build scripts'),
    ('batch_norm_2', 'batch_norm_2', BATCH_NORM_VARIABLES, 'UNKNOWN (lab convention batch_norm_<i>)'),
    ('conv_2', 'conv_2', CONV_VARIABLES, 'original build scripts'),
    ('conv_3', 'conv_3', CONV_VARIABLES, 'original build scripts'),
    ('conv_4', 'conv_4', CONV_VARIABLES, 'original build scripts'),
    ('fc_intermediate', 'fc_intermediate', CONV_VARIABLES, 'original build scripts'),
)


class NameMapError(UserError, ValueError):
    """A name-map override that cannot be read or names no Keras layer / variable."""


def head_layer_name(task):
    """Keras layer name of the output layer of ``task`` (``'word'`` or ``'audioset'``)."""
    return 'fc_top_%s' % task


def head_tf1_names(tasks):
    """``{task: 'fc_top_<i>'}``, i = index of the task key among the network's sorted keys."""
    keys = sorted(TASK_KEYS[t] for t in tasks)
    return {t: 'fc_top_%d' % keys.index(TASK_KEYS[t]) for t in tasks}


def layer_table(tasks):
    """Rows ``(keras layer, TF1 layer scope, variables, source)`` for a network with ``tasks`` heads."""
    rows = [(k, '%s/%s' % (TF1_SCOPE, t), v, s) for k, t, v, s in BODY_LAYERS]
    tf1_heads = head_tf1_names(tasks)
    for task in sorted(tasks, key=lambda t: TASK_KEYS[t]):
        source = ('task key %r (%s) at index %s of the sorted task keys'
                  % (TASK_KEYS[task], 'original' if task == 'word' else 'UNKNOWN',
                     tf1_heads[task].rsplit('_', 1)[1]))
        rows.append((head_layer_name(task), '%s/%s' % (TF1_SCOPE, tf1_heads[task]),
                     CONV_VARIABLES, source))
    return rows


def load_overrides(name_map):
    """``name_map`` (None, a dict, or a JSON file path) as a dict of str -> str."""
    if name_map is None:
        return {}
    if isinstance(name_map, (str, os.PathLike)):
        path = os.fspath(name_map)
        try:
            with open(path, encoding='utf-8') as f:
                name_map = json.load(f)
        except OSError as e:
            raise NameMapError('cannot read name map file %s: %s' % (path, e.strerror or e)) from None
        except json.JSONDecodeError as e:
            raise NameMapError('name map file %s is not valid JSON (%s); it must hold one object '
                               '{"<keras layer>": "<TF1 layer scope>", ...}' % (path, e)) from None
    if not isinstance(name_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in name_map.items()):
        raise NameMapError('a name map must be an object of strings {"<keras layer>[/<variable>]": '
                           '"<TF1 name>"}, got %r' % (name_map,))
    return dict(name_map)


def variable_map(tasks, name_map=None):
    """``{'<keras layer>/<variable>': '<TF1 checkpoint variable>'}`` with overrides applied.

    Args:
      tasks: the output heads, e.g. ``('word',)`` or ``('word', 'audioset')``.
      name_map: overrides (see the module docstring): None, dict or JSON path.

    Raises :class:`NameMapError` for an override that names no Keras layer or
    variable of this network (listing the valid names).
    """
    overrides = load_overrides(name_map)
    rows = layer_table(tasks)
    layers = {keras: (tf1, variables) for keras, tf1, variables, _ in rows}
    mapping = {}
    for keras, (tf1, variables) in layers.items():
        scope = overrides.get(keras, tf1).rstrip('/')
        for var in variables:
            mapping['%s/%s' % (keras, var)] = '%s/%s' % (scope, var)
    unknown = sorted(k for k in overrides if k not in layers and k not in mapping)
    if unknown:
        raise NameMapError('name map entries %s name no layer or variable of this network; valid '
                           'keys are the layers %s or "<layer>/<variable>" such as %s'
                           % (', '.join(unknown), ', '.join(layers), next(iter(mapping))))
    for key, value in overrides.items():
        if key in mapping:
            mapping[key] = value
    return mapping


def describe(tasks, name_map=None):
    """The name map as a readable table (one line per Keras variable), for printing."""
    mapping = variable_map(tasks, name_map)
    defaults = variable_map(tasks)
    sources = {keras: source for keras, _, _, source in layer_table(tasks)}
    width = max(len(k) for k in mapping) + 2
    lines = ['%-*s %s' % (width, 'Keras variable', 'TF1 checkpoint variable  [source of the name]')]
    for key, value in mapping.items():
        source = 'override' if value != defaults[key] else sources[key.split('/')[0]]
        lines.append('%-*s %s  [%s]' % (width, key, value, source))
    return '\n'.join(lines)
