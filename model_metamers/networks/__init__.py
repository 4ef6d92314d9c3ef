"""Registry of the networks: ``build(name, weights=..., seed=0)`` and ``list_networks()``.

Each entry names the module and builder function that makes it, so a network's
code is only imported when it is built. Builders take ``weights`` (``'random'``,
a path to a checkpoint in the network's original format, or a converted
``*.weights.h5`` file) and ``seed`` (random initialisation) and return a
:class:`~model_metamers.networks.base.MetamerNetwork`.
"""

import importlib

from model_metamers.errors import UserError
from model_metamers.networks.base import MetamerNetwork, UnknownLayerError

# name: (module, builder function, modality, one-line description)
_NETWORKS = {
    'word_aliased': ('model_metamers.networks.audio.audio_cnn', 'build_word_aliased', 'audio',
                     'word-trained CNN of Table S2 (strided convs, max-pooling)'),
    'word_reduced_aliasing': ('model_metamers.networks.audio.audio_cnn', 'build_word_reduced_aliasing',
                              'audio', 'word-trained CNN with Hanning pooling (Table S3)'),
    'word_reduced_aliasing_random': ('model_metamers.networks.audio.audio_cnn',
                                     'build_word_reduced_aliasing_random', 'audio',
                                     'the reduced-aliasing architecture, untrained'),
    'audioset_reduced_aliasing': ('model_metamers.networks.audio.audio_cnn',
                                  'build_audioset_reduced_aliasing', 'audio',
                                  'reduced-aliasing CNN trained on AudioSet (517 labels)'),
    'word_audioset_reduced_aliasing': ('model_metamers.networks.audio.audio_cnn',
                                       'build_word_audioset_reduced_aliasing', 'audio',
                                       'reduced-aliasing CNN with word and AudioSet heads'),
    'vgg_19': ('model_metamers.networks.image.vgg', 'build_vgg_19', 'image',
               'VGG-19, TF-Slim ImageNet checkpoint'),
    'inception_v3': ('model_metamers.networks.image.inception_v3', 'build_inception_v3', 'image',
                     'Inception-V3, TF-Slim ImageNet checkpoint'),
    'resnet_v2_101': ('model_metamers.networks.image.resnet_v2', 'build_resnet_v2_101', 'image',
                      'ResNet-101-V2, TF-Slim ImageNet checkpoint'),
    'vggish': ('model_metamers.networks.speech.vggish', 'build_vggish', 'audio',
               'VGGish AudioSet embedding network (128-D, no classes), log-mel front end'),
    'deepspeech': ('model_metamers.networks.speech.deepspeech', 'build_deepspeech', 'audio',
                   'Mozilla DeepSpeech 0.5.1 or 0.4.1 (MFCC, 5 dense + LSTM, CTC over 29 chars)'),
    'kws_2d': ('model_metamers.networks.audio.kws', 'build_kws_2d', 'audio',
               'keyword-spotting 2-D CNN on a 32x32 cochleagram, 8 words, 1 s at 16 kHz (SPEC 7)'),
    'kws_1d_grouped': ('model_metamers.networks.audio.kws', 'build_kws_1d_grouped', 'audio',
                       'keyword-spotting 1-D grouped-conv CNN, 8 words, 1 s at 16 kHz (SPEC 7)'),
}


class UnknownNetworkError(UserError, ValueError):
    """A network name that is not registered."""


def register(name, module, builder, modality, description):
    """Add a network to the registry (for networks defined outside this package)."""
    _NETWORKS[name] = (module, builder, modality, description)


def list_networks(modality=None):
    """Registered network names, optionally only ``'audio'`` or ``'image'`` ones."""
    return [n for n, entry in _NETWORKS.items() if modality is None or entry[2] == modality]


def describe_networks():
    """``{name: (modality, description)}`` of every registered network."""
    return {n: (entry[2], entry[3]) for n, entry in _NETWORKS.items()}


def modality_of(name):
    """``'audio'`` or ``'image'`` for a registered network, without building it."""
    return _entry(name)[2]


def _entry(name):
    if name not in _NETWORKS:
        raise UnknownNetworkError('unknown network %r; registered networks: %s'
                                  % (name, ', '.join(_NETWORKS)))
    return _NETWORKS[name]


def get_builder(name):
    """The builder function of a registered network."""
    module, builder = _entry(name)[:2]
    return getattr(importlib.import_module(module), builder)


def build(name, weights='random', seed=0, **kwargs):
    """Build a registered network.

    Args:
      name: one of :func:`list_networks`.
      weights: ``'random'`` (seeded initialisation), a path to a checkpoint in the
        network's original format (TF1 / TF-Slim checkpoint prefix), or a path to
        a converted ``*.weights.h5`` file.
      seed: seed of the random initialisation (``weights='random'``).
      **kwargs: options of the network's builder.

    Returns:
      A :class:`MetamerNetwork`.
    """
    from tfcochleagram.precision import use_full_float32
    use_full_float32()  # TensorFloat-32 on Ampere+ GPUs would change every activation by ~1e-3
    return get_builder(name)(weights=weights, seed=seed, **kwargs)


def load(spec, weights='auto', log=None, **options):
    """``(network, weights, weights SHA-1)`` for a command's ``--network`` and ``--weights``.

    ``spec``: a registered name (weights as in :mod:`model_metamers.weights`:
    ``'auto'`` finds, fetches or converts them) or your own model, a saved
    ``.keras`` file or ``package.module:function`` (see
    :func:`model_metamers.networks.custom.load`; ``options`` are its
    ``modality``, ``class_names``, ``sample_rate``, ``input_shape``, ``front_end``).
    The SHA-1 is what results and null distributions record of the weights.
    """
    from model_metamers.networks import custom
    from model_metamers.weights import resolve_weights, weights_fingerprint

    if custom.is_spec(spec):
        return custom.load(spec, weights, **options)
    given = sorted(k for k, v in options.items() if v not in (None, '', ()))
    if given:
        raise UserError('%s apply to your own model (--network=path/to/model.keras or '
                        'package.module:function); %r is a registered network: drop them'
                        % (', '.join('--' + k for k in given), spec))
    weights = resolve_weights(spec, weights, log)
    network = build(spec, weights=weights)
    return network, weights, weights_fingerprint(weights)


__all__ = ['MetamerNetwork', 'UnknownLayerError', 'UnknownNetworkError', 'build',
           'describe_networks', 'get_builder', 'list_networks', 'load', 'modality_of', 'register']
