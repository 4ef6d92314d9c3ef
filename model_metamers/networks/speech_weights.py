"""Loading released TF1 checkpoints (or converted .weights.h5 files) into the speech models.

Like :func:`model_metamers.networks.checkpoints.weights_kind`, plus the
single-file TF1 "V1" checkpoint format that ``vggish_model.ckpt`` is
published in (no ``.index`` file next to it).
"""

import os

import tensorflow as tf

from model_metamers import weights_io
from model_metamers.networks import checkpoints


def _is_v1_checkpoint_file(path):
    if not os.path.isfile(path) or path.endswith('.h5') or os.path.exists(path + '.index'):
        return False
    try:
        tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError):
        return False
    return True


def resolve_weights(weights, network_name, original_format):
    """Classify ``weights`` before the (large) model is built: ``(kind, path)``.

    ``kind`` is ``'random'``, ``'h5'``, ``'checkpoint'`` (TF V2 prefix) or
    ``'checkpoint_v1'`` (single-file TF1 checkpoint). Raises
    :class:`~model_metamers.networks.checkpoints.CheckpointError` (where to
    put / how to fetch the file) when nothing is at the path.
    """
    if isinstance(weights, (str, os.PathLike)) and weights not in ('random', 'default'):
        path = os.path.expanduser(str(weights))
        if _is_v1_checkpoint_file(path):
            return 'checkpoint_v1', path
        if (os.path.isfile(path) and not path.endswith('.h5')
                and not os.path.exists(path + '.index')):
            raise checkpoints.CheckpointError(
                '%s exists but is not a TF checkpoint that TensorFlow can read; give the %s '
                'checkpoint (a V1 file, or a V2 prefix without .index/.data-*) or a .weights.h5 '
                'file' % (path, original_format))
    return checkpoints.weights_kind(weights, network_name, original_format)


def load_weights(model, kind, path, name_map):
    """Assign ``model``'s weights as :func:`resolve_weights` classified them.

    ``name_map``: ``{'<keras layer>/<variable>': '<checkpoint variable>'}``.
    Returns a short description for the network's ``info``. Raises
    :class:`~model_metamers.networks.checkpoints.CheckpointError` with expected
    and available names side by side when a checkpoint does not fit.
    """
    if kind == 'random':
        return {'weights': 'random'}
    if kind == 'h5':
        weights_io.load_weights(model, path)
        return {'weights': path, 'weights_format': 'weights_h5'}
    checkpoints.assign_by_name(model, name_map, checkpoints.read_checkpoint(path), path)
    return {'weights': path,
            'weights_format': 'tf_checkpoint_v1' if kind == 'checkpoint_v1' else 'tf_checkpoint'}
