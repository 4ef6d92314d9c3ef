"""Stimuli: finding the natural inputs of a run and loading them as network inputs.

``--input`` names files and folders; :func:`expand_inputs` turns them into a
list of files, :func:`stems_of` into the output names (``<stem>.h5``), and
:func:`load_stimulus` reads one file as a float32 array of the network's
``input_shape`` (audio: waveform samples at the network's rate; images: pixels
in [0, 1]).
"""

import os

import numpy as np

from model_metamers import resources
from model_metamers.errors import GenerationError


def default_inputs(network):
    """The demo sound or image shipped for ``network`` (a list of one path)."""
    return [resources.demo_input(network.name, network.modality)]


def input_extensions(modality):
    """Lower-case file suffixes a folder of ``'audio'`` or ``'image'`` inputs is scanned for."""
    if modality == 'image':
        from model_metamers.images import FILE_EXTENSIONS
    else:
        from model_metamers.audio import FILE_EXTENSIONS
    return FILE_EXTENSIONS


def expand_inputs(items, modality):
    """Input files from paths and folders; a folder gives its sorted files of ``modality``.

    Files named directly are kept whatever their suffix (the loader judges them);
    a folder with no file of the modality's suffixes is an error.
    """
    paths = []
    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            ext = input_extensions(modality)
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.lower().endswith(ext) and not os.path.isdir(os.path.join(item, f)))
            if not found:
                noun = 'images' if modality == 'image' else 'sounds'
                raise GenerationError('folder %s holds no %s files (%s); give a folder of %s or '
                                      'name the files' % (item, modality, ', '.join(ext), noun))
            paths += found
        elif item:
            paths.append(item)
    return paths


def load_stimulus(network, path):
    """A natural input file as a network stimulus (``network.input_shape`` float32)."""
    if network.modality == 'image':
        from model_metamers import images
        return images.load_image(path, size=network.input_shape[0])
    from model_metamers import audio
    n = int(np.prod(network.input_shape))
    return audio.load_audio(path, sr=network.sample_rate, duration_s=n / network.sample_rate)


def stems_of(inputs):
    """Output file stems of the inputs; duplicate stems are an error."""
    stems = [os.path.splitext(os.path.basename(str(p)))[0] for p in inputs]
    seen = {}
    for path, stem in zip(inputs, stems):
        if stem in seen:
            raise GenerationError('inputs %s and %s share the name %r; rename one so their outputs '
                             'do not collide' % (seen[stem], path, stem))
        seen[stem] = path
    return stems
