"""Where weights come from: the ``weights`` argument of ``build()`` and checkpoint folders."""

import fnmatch
import os

import numpy as np
import tensorflow as tf

from model_metamers import weights_io
from model_metamers.errors import UserError
from model_metamers.networks.weights import bookkeeping
# The folder and file names that 'default' means live with the rest of that meaning.
from model_metamers.weights import AUTO, DEFAULT, RANDOM, checkpoint_dir, default_weights_path, is_random, resolve_default  # noqa: F401

class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing or does not fit the network."""


def is_v1_checkpoint_file(path):
    """True for a single-file TF1 "V1" checkpoint that TF can read (no ``.index`` next to it).

    The published ``vggish_model.ckpt`` is in this format.
    """
    if not os.path.isfile(path) or path.endswith('.h5') or os.path.exists(path + '.index'):
        return False
    try:
        tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError):
        return False
    return True


def is_tf_checkpoint(path):
    """True for a TF checkpoint prefix (``<prefix>.index`` exists), a folder holding one, or a
    single-file V1 checkpoint (the published TF-Slim and VGGish checkpoints)."""
    if os.path.isdir(path):
        return tf.train.latest_checkpoint(path) is not None
    return os.path.exists(path + '.index') or is_v1_checkpoint_file(path)


def weights_kind(weights, network_name, original_format):
    """Classify a ``weights`` argument.

    Returns ``('random', None)``, ``('h5', path)`` or ``('checkpoint', prefix)``.
    Raises :class:`CheckpointError` with where to put / how to get the file when
    the path does not exist.
    """
    if is_random(weights):
        return 'random', None
    weights = resolve_default(weights, network_name)
    path = os.path.expanduser(str(weights))
    if path.endswith('.h5') and os.path.isfile(path):
        return 'h5', path
    if is_tf_checkpoint(path):
        if os.path.isdir(path):
            path = tf.train.latest_checkpoint(path)
        return 'checkpoint', path
    raise CheckpointError(
        'no weights at %s for network %s: give a checkpoint prefix in %s format (the path '
        'without .index/.data-*), a converted .weights.h5 file, or "random"; put published checkpoints '
        'in %s (see checkpoints/README.md) or fetch them with '
        'python -m model_metamers.fetch --network=%s'
        % (path, network_name, original_format, checkpoint_dir(), network_name))


def load_weights_h5(model, path):
    """Load a converted ``.weights.h5`` into ``model``; any mismatch is a :class:`CheckpointError`."""
    try:
        weights_io.load_weights(model, path)
    except (ValueError, FileNotFoundError) as e:
        raise CheckpointError(str(e)) from None


def read_checkpoint(prefix):
    """``{variable name: numpy array}`` of every variable in a TF checkpoint."""
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def assign_by_name(model, name_map, values, checkpoint_label):
    """Assign Keras variables from checkpoint arrays through an explicit name map.

    Args:
      model: the Keras model.
      name_map: ``{'<keras layer>/<variable>': '<checkpoint variable name>'}``.
      values: ``{checkpoint variable name: array}``.
      checkpoint_label: shown in errors (the checkpoint path).

    Raises :class:`CheckpointError` listing expected and available names side by
    side when a variable is missing or has the wrong shape.
    """
    variables = weights_io.named_variables(model)
    unmapped = sorted(set(variables) - set(name_map))
    missing = sorted(k for k, v in name_map.items() if v not in values)
    bad = sorted(k for k, v in name_map.items()
                 if v in values and k in variables
                 and tuple(np.shape(values[v])) != tuple(variables[k].shape))
    if unmapped or missing or bad:
        lines = ['checkpoint %s does not fit model %s:' % (checkpoint_label, model.name)]
        if unmapped:
            lines.append('  Keras variables with no checkpoint name in the map: ' + ', '.join(unmapped))
        if missing:
            lines.append('  expected checkpoint variables that are missing:')
            lines += ['    %-50s <- %s' % (k, name_map[k]) for k in missing]
        for k in bad:
            lines.append('  %s: checkpoint %s has shape %s, model needs %s'
                         % (k, name_map[k], np.shape(values[name_map[k]]), tuple(variables[k].shape)))
        lines.append('  variables in the checkpoint:')
        lines += ['    %s %s' % (n, tuple(np.shape(values[n]))) for n in sorted(values)]
        raise CheckpointError('\n'.join(lines))
    for key, var in variables.items():
        var.assign(values[name_map[key]])


def ignore_patterns(ignore):
    """``ignore`` (None, a comma-separated string or a list) as a tuple of name patterns.

    A pattern is a variable name, a scope (every variable under it) or an
    fnmatch pattern such as ``brain_network/batch_norm_*``.
    """
    if not ignore:
        return ()
    if isinstance(ignore, str):
        ignore = ignore.split(',')
    return tuple(p.strip().rstrip('/') for p in ignore if p and p.strip())


def _ignored(name, patterns):
    return any(name == p or name.startswith(p + '/') or fnmatch.fnmatchcase(name, p)
               for p in patterns)


def unaccounted(names, mapped, scope, ignore=()):
    """Variables of ``scope/`` in ``names`` that the load would drop without a word.

    Those are the names that are neither in ``mapped`` (read into the model),
    nor training bookkeeping (:mod:`bookkeeping`), nor matched by one of the
    user's ``ignore`` patterns. A non-empty result means the checkpoint's
    network has something the Keras model lacks.
    """
    patterns = ignore_patterns(ignore)
    mapped = set(mapped)
    return sorted(n for n in names if n.startswith(scope + '/') and n not in mapped
                  and bookkeeping.kind_of(n) is None and not _ignored(n, patterns))


def with_moving_averages(name_map, names, label):
    """``(name_map, n)``: every checkpoint name replaced by its EMA shadow where ``names`` has one.

    Raises :class:`CheckpointError` when the checkpoint holds no shadow of any
    mapped variable (``use_ema`` was asked of a checkpoint trained without it).
    """
    names = set(names)
    shadows = {v: bookkeeping.ema_name(v) for v in name_map.values()
               if bookkeeping.ema_name(v) in names}
    if not shadows:
        raise CheckpointError('checkpoint %s has no ExponentialMovingAverage shadows of the '
                              "network's variables; load it without use_ema (--nouse_ema)" % label)
    return {k: shadows.get(v, v) for k, v in name_map.items()}, len(shadows)
