"""Weights for the speech models (VGGish, DeepSpeech): released TF1 checkpoints read by name
through an explicit, overridable name map, or converted ``*.weights.h5`` files.

The weights argument is checked (:func:`resolve_weights`) before the large
models are built, so a wrong path fails at once.
"""

import glob
import json
import os

import h5py

from model_metamers.fileio import decoded
from model_metamers.networks.weights import checkpoints


def _single_prefix_in(folder):
    """The one checkpoint prefix in ``folder`` (one ``*.index``), or None if it has none.

    For a release folder without TF's ``checkpoint`` state file, or whose state
    file names a path on the machine that wrote it. Several prefixes are an
    error naming them.
    """
    prefixes = sorted(p[:-len('.index')]
                      for p in glob.glob(os.path.join(glob.escape(folder), '*.index')))
    if len(prefixes) > 1:
        raise checkpoints.CheckpointError(
            '%s holds %d checkpoints and no usable TF "checkpoint" state file; pass one prefix: %s'
            % (folder, len(prefixes), ', '.join(prefixes)))
    return prefixes[0] if prefixes else None


def resolve_weights(weights, network_name, original_format):
    """Classify ``weights`` (see ``checkpoints.weights_kind``): ``(kind, path)``.

    ``kind`` is ``'random'``, ``'h5'`` or ``'checkpoint'`` (V2 prefix, folder,
    or single-file V1 checkpoint). A folder without a usable ``checkpoint``
    state file is taken when it holds exactly one ``*.index``. Raises
    :class:`~model_metamers.networks.weights.checkpoints.CheckpointError` naming the
    problem (nothing there / a file TF cannot read as a checkpoint).
    """
    if isinstance(weights, (str, os.PathLike)) and weights not in (checkpoints.RANDOM, checkpoints.DEFAULT):
        path = os.path.expanduser(str(weights))
        if (os.path.isfile(path) and not path.endswith('.h5')
                and not checkpoints.is_tf_checkpoint(path)):
            raise checkpoints.CheckpointError(
                '%s exists but is not a TF checkpoint that TensorFlow can read; give the %s '
                'checkpoint (a V1 file, or a V2 prefix without .index/.data-*) or a .weights.h5 '
                'file' % (path, original_format))
        if os.path.isdir(path) and not checkpoints.is_tf_checkpoint(path):
            prefix = _single_prefix_in(path)
            if prefix is not None:
                return 'checkpoint', prefix
    return checkpoints.weights_kind(weights, network_name, original_format)


def read_weights_file_attrs(path):
    """Attributes of a converted ``*.weights.h5``; ``build_options`` decoded from JSON."""
    with h5py.File(path, 'r') as f:
        attrs = {k: decoded(v) for k, v in f.attrs.items()}
    try:
        attrs['build_options'] = json.loads(attrs.get('build_options', '{}'))
    except (TypeError, ValueError):
        raise checkpoints.CheckpointError(
            '%s: attribute build_options is not JSON; reconvert the checkpoint with python -m '
            'model_metamers.convert_checkpoint' % path) from None
    if not isinstance(attrs['build_options'], dict):
        attrs['build_options'] = {}
    return attrs


def resolve_name_map(defaults, overrides):
    """``defaults`` updated with ``overrides`` (a dict or the path of a JSON file of one).

    Keys are ``'<keras layer>/<variable>'``; an unknown key is an error that
    lists the valid ones.
    """
    if overrides is None:
        return dict(defaults)
    if isinstance(overrides, (str, os.PathLike)):
        try:
            with open(os.path.expanduser(str(overrides)), encoding='utf-8') as f:
                overrides = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise checkpoints.CheckpointError('cannot read name map %s (%s); give a JSON object '
                                              '{"<keras layer>/<variable>": "<checkpoint name>"}'
                                              % (overrides, e)) from None
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise checkpoints.CheckpointError('name map overrides unknown Keras variables %s; valid '
                                          'keys: %s' % (', '.join(unknown), ', '.join(defaults)))
    names = dict(defaults)
    names.update(overrides)
    return names


def load_weights(model, kind, path, name_map):
    """Assign ``model``'s weights as :func:`resolve_weights` classified them.

    ``name_map``: ``{'<keras layer>/<variable>': '<checkpoint variable>'}``.
    Returns a short description for the network's ``info``. Raises
    :class:`~model_metamers.networks.weights.checkpoints.CheckpointError` with expected
    and available names side by side when a checkpoint does not fit.
    """
    if kind == 'random':
        return {'weights': 'random'}
    if kind == 'h5':
        checkpoints.load_weights_h5(model, path)
        return {'weights': path, 'weights_format': 'weights_h5'}
    checkpoints.assign_by_name(model, name_map, checkpoints.read_checkpoint(path), path)
    v1 = checkpoints.is_v1_checkpoint_file(path)
    return {'weights': path, 'weights_format': 'tf_checkpoint_v1' if v1 else 'tf_checkpoint'}
