"""Files shipped inside the package: class lists, the ImageNet 16-way grouping, demo stimuli.

The demo sound and images come from the original model_metamers project (MIT
licence, see NOTICE).
"""

import functools
import json
import os

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')

DEMO_SOUND = os.path.join(DATA_DIR, 'human_audio_resampled.wav')
DEMO_SOUND_WORD = 'human'
DEMO_IMAGES = {
    'airplane': os.path.join(DATA_DIR, 'airplane.png'),
    'pocketwatch': os.path.join(DATA_DIR, 'pocketwatch.jpg'),
}
DEMO_IMAGE = DEMO_IMAGES['airplane']
# 1 s at 16 kHz, "yes" spoken by espeak-ng with a voice of the spoken-word data set's test split
# (never seen in training), for the keyword-spotting networks. Made by this project.
DEMO_KEYWORD_SOUND = os.path.join(DATA_DIR, 'demo_keyword_yes.wav')
DEMO_KEYWORD_WORD = 'yes'


def demo_input(network_name, modality):
    """The shipped natural stimulus a network is demonstrated on when no input is given."""
    if modality == 'image':
        return DEMO_IMAGE
    return DEMO_KEYWORD_SOUND if network_name.startswith('kws_') else DEMO_SOUND


def data_path(name):
    """Absolute path of a file in the package's data folder."""
    return os.path.join(DATA_DIR, name)


@functools.lru_cache(maxsize=None)
def _load_json(name):
    with open(data_path(name), encoding='utf-8') as f:
        return json.load(f)


def word_classes():
    """The 794 word-task classes (index 0 is the null class ``__nullSignal__``)."""
    return list(_load_json('word_classes_794.json')['classes'])


def imagenet_classes():
    """The 1000 ImageNet class names, 0-based, no background class."""
    return list(_load_json('imagenet_classes_1000.json')['classes'])


def imagenet_16class_indices():
    """``{category: [0-based ImageNet-1000 indices]}`` of the 16-way task (Geirhos et al. 2018)."""
    categories = _load_json('imagenet_16class_indices.json')['categories']
    return {name: list(indices) for name, indices in categories.items()}
