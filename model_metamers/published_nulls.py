"""The original release's null distributions (``*_null_dist_spearman_r.pckl``), read as data.

Each file is a pickled dict ``{original layer name: Spearman rho of each of
1,000,000 pairs of natural stimuli}`` (a list or an array); the original
notebooks pass a metamer at a layer when ``np.max(null[layer]) < rho``
(jenellefeather/model_metamers, ``Audio_Network_Metamers.ipynb`` and
``VGG19_Metamers_Using_TFSlim_Model.ipynb``). The keys are the original
graph's tensor names (the build scripts' ``metamer_gen_layers``):

=================================  ==================================
original key                       layer name here
=================================  ==================================
``visualization_input``            ``cochleagram`` (the audio input)
``<layer>_jittered_relu``          ``<layer>`` (after the ReLU, whose
                                   gradient the original modified)
anything else (``pool_0_0``,       unchanged
``logits``, ``fc8``)
=================================  ==================================

Files are read with :func:`model_metamers.safe_pickle.load_data`: a file that
names anything but containers and numpy arrays is refused before anything in
it runs.
"""

import os

import numpy as np

from model_metamers.errors import UserError
from model_metamers import safe_pickle

# Network -> the file name of its null distribution in the release: the two word networks'
# are in metamers_audio_models_network_files.tar.gz, VGG-19's is a separate download
# (jenellefeather/model_metamers README.md).
FILES = {
    'word_aliased': 'word_aliased_null_dist_spearman_r.pckl',
    'word_reduced_aliasing': 'word_reduced_aliasing_null_dist_spearman_r.pckl',
    'vgg_19': 'vgg_null_dist_spearman_r.pckl',
}
JITTERED_RELU_SUFFIX = '_jittered_relu'


class PublishedNullError(UserError, ValueError):
    """A published null-distribution pickle that cannot be used (one-line message)."""


def layer_name(key):
    """Our layer name for a key of a published null (see the module docstring)."""
    if isinstance(key, bytes):  # written by Python 2
        key = key.decode('latin1')
    key = str(key)
    if key == 'visualization_input':
        return 'cochleagram'
    if key.endswith(JITTERED_RELU_SUFFIX):
        return key[:-len(JITTERED_RELU_SUFFIX)]
    return key


def network_of(path):
    """The network a published null file belongs to, from its file name, else None."""
    base = os.path.basename(os.fspath(path))
    for network, name in FILES.items():
        if base == name:
            return network
    return None


def read(path):
    """``{layer: float64 rho array}`` from a published null pickle, keys mapped to our names.

    Raises :class:`PublishedNullError` / :class:`~model_metamers.safe_pickle.UnsafePickleError`
    (one line each) for a file that is not a dict of rho sequences.
    """
    data = safe_pickle.load_data(path, what='null-distribution pickle')
    if not isinstance(data, dict) or not data:
        raise PublishedNullError('%s is not a published null distribution: it holds %s, not a '
                                 'dict {layer: rho values}' % (path, type(data).__name__))
    out = {}
    for key, values in data.items():
        try:
            rho = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise PublishedNullError('%s: the values of layer %r are not numbers (%s)'
                                     % (path, key, type(values).__name__)) from None
        if rho.size == 0 or not np.all(np.isfinite(rho)) or np.any(np.abs(rho) > 1 + 1e-6):
            raise PublishedNullError('%s: layer %r does not hold Spearman rho values (empty, '
                                     'non-finite or outside [-1, 1])' % (path, key))
        name = layer_name(key)
        if name in out:
            raise PublishedNullError('%s: keys %r and another map to the same layer %s'
                                     % (path, key, name))
        out[name] = rho
    return out


def find(network, folder, max_depth=3):
    """Path of ``network``'s published null file under ``folder`` (a fetched release), else None."""
    name = FILES.get(network)
    if not name or not os.path.isdir(folder):
        return None
    base_depth = os.path.abspath(folder).rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(folder):
        if name in files:
            return os.path.join(root, name)
        if root.count(os.sep) - base_depth >= max_depth:
            dirs[:] = []
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
    return None


def null_record(path):
    """What a null file says it was made for, as ``null_distribution.check_matches`` takes it.

    An HDF5 null records its network and weights itself (its path is returned);
    a published pickle records nothing, so its network is the one its file
    name names (``{'network': ...}``, None for an unknown name).
    """
    if safe_pickle.is_pickle(path):
        return {'network': network_of(path)}
    return path
