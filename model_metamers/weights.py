"""The one meaning of a ``weights`` argument (``--weights``), as ``keras.applications`` has ``weights=``.

* ``'random'`` (or None): the random initialisers (seeded by ``build(seed=)``).
* ``'default'``: ``<checkpoint dir>/<network>.weights.h5`` (the converted file);
  for a network whose builder names a published checkpoint file, that file in
  the checkpoint folder when no converted file is there (:func:`resolve_default`).
* ``'auto'`` (generation and the other tools): ``'default'``, except that a
  fetched original checkpoint is converted on first use, the untrained
  ``*_random`` networks fall back to ``'random'``, and no weights at all is an
  error saying how to get them (:func:`resolve_weights`).
* anything else: a path (a converted ``.weights.h5``, a TF checkpoint prefix,
  or a folder holding one), classified by :func:`model_metamers.networks.weights.checkpoints.weights_kind`.

This module imports the networks only inside its functions: the network
builders import it while the registry is being filled.
"""

import glob
import hashlib
import os
import sys
import time

from model_metamers.fileio import hash_file

RANDOM, DEFAULT, AUTO = 'random', 'default', 'auto'

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def checkpoint_dir():
    """Folder for published / converted checkpoints.

    ``$MODEL_METAMERS_CHECKPOINT_DIR`` if set, else the ``checkpoints/`` folder of
    the source checkout, else ``./checkpoints``.
    """
    env = os.environ.get('MODEL_METAMERS_CHECKPOINT_DIR')
    if env:
        return env
    candidate = os.path.join(_PACKAGE_PARENT, 'checkpoints')
    if os.path.isdir(candidate):
        return candidate
    return os.path.abspath('checkpoints')


def default_weights_path(network_name):
    """``<checkpoint_dir>/<network>.weights.h5``, the converted file ``build`` looks for."""
    return os.path.join(checkpoint_dir(), '%s.weights.h5' % network_name)


def is_random(weights):
    """True when ``weights`` means the random initialisers."""
    return weights is None or weights == RANDOM


def resolve_default(weights, network_name, published_checkpoint=None):
    """``weights`` with ``'default'`` replaced by the file it means (other values as they are).

    ``'default'``: the converted ``<checkpoint dir>/<network>.weights.h5``; when it
    is not there and ``published_checkpoint`` (a file name in the checkpoint
    folder, where ``python -m model_metamers.fetch`` puts it) is a TF checkpoint,
    that checkpoint.
    """
    if weights != DEFAULT:
        return weights
    path = default_weights_path(network_name)
    if published_checkpoint and not os.path.exists(path):
        from model_metamers.networks.weights import checkpoints
        published = os.path.join(checkpoint_dir(), published_checkpoint)
        if checkpoints.is_tf_checkpoint(published):
            return published
    return path


def _convert_once(network_name, original, path, log):
    """Convert a fetched original checkpoint to ``path`` on first use; the original if that fails.

    Later runs then load the by-name ``.weights.h5`` directly. A checkpoint
    folder that cannot be written keeps the original format (loaded on every run).
    """
    from model_metamers import convert_checkpoint
    from model_metamers.networks.weights.checkpoints import CheckpointError

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if not os.access(os.path.dirname(path) or '.', os.W_OK):
        log('using %s as it is (%s is not writable, so it is not converted)'
            % (original, os.path.dirname(path)))
        return original
    log('converting %s to %s (once; later runs load the converted file) ...' % (original, path))
    start = time.time()
    try:
        _, net = convert_checkpoint.convert(network_name, original, output=path)
    except convert_checkpoint.ConversionError as exc:
        raise CheckpointError('cannot convert %s: %s' % (original, exc)) from None
    if net.info.get('weights_report'):
        log(net.info['weights_report'])
    log('converted in %.0f s' % (time.time() - start))
    return path


def resolve_weights(network_name, weights, log=None):
    """Turn ``'auto'`` into a concrete weights argument for ``networks.build``.

    ``'auto'``: the converted ``checkpoints/<network>.weights.h5``; else the
    published checkpoint in its original format if it is in ``checkpoints/``
    (fetched, or put there by hand), converted to that file on first use;
    random weights for the untrained network; otherwise an error that says
    how to get the weights. ``log``: where the conversion's progress lines go.
    """
    from model_metamers import networks
    from model_metamers.networks.weights.checkpoints import CheckpointError

    networks.modality_of(network_name)  # unknown names fail here, with the list of networks
    if weights != AUTO:
        return weights
    path = default_weights_path(network_name)
    if os.path.exists(path):
        return path
    from model_metamers.networks.audio import kws
    if network_name in kws.NETWORKS:  # trained here, not fetched: say how to train them
        raise kws.missing_weights_error(network_name, path)
    from model_metamers import fetch
    original = fetch.local_checkpoint(network_name)
    if original:
        return _convert_once(network_name, original, path, log)
    if network_name.endswith('_random'):
        return RANDOM
    how = ('fetch the published checkpoint (python -m model_metamers.fetch --network=%s) or convert '
           'one (python -m model_metamers.convert_checkpoint --network=%s --checkpoint=PREFIX)'
           % (network_name, network_name) if network_name in fetch.SOURCES else
           'no public checkpoint is known for it: convert your own (python -m '
           'model_metamers.convert_checkpoint --network=%s --checkpoint=PREFIX)' % network_name)
    raise CheckpointError('no weights for %s in %s; %s, or pass --weights=random for an untrained '
                          'network' % (network_name, os.path.dirname(path), how))


def weights_fingerprint(weights):
    """SHA-1 of the weight file(s) ``weights`` names (over each file's base name, then its bytes,
    in name order), or ``'random'``.

    A ``.weights.h5`` or V1 checkpoint is one file; a V2 checkpoint prefix is
    every ``<prefix>.*`` file. Results record it, so that a rerun after the
    weights were retrained or replaced at the same path makes its metamers again.
    """
    if is_random(weights):
        return RANDOM
    path = os.path.expanduser(str(weights))
    if os.path.isdir(path):  # a folder of TF checkpoints: build() loads its latest
        import tensorflow as tf
        path = tf.train.latest_checkpoint(path) or path
    files = [path] if os.path.isfile(path) else sorted(glob.glob(glob.escape(path) + '.*'))
    digest = hashlib.sha1()
    for name in files:
        digest.update(os.path.basename(name).encode())
        hash_file(name, digest)
    return digest.hexdigest()
