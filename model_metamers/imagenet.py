"""ImageNet label helpers: the 16-category task of Geirhos et al. (2018) used in Feather et al. 2019.

Aggregation (Geirhos et al.): softmax over the 1000 ImageNet classes, then for
each of the 16 categories the MEAN probability of its member classes; the
decision is the argmax over categories. Networks with 1001 logits (TF-Slim
Inception / ResNet, background at index 0) pass ``logit_offset=1``; their
background logit is dropped before the softmax, so every network is scored on
the same 1000 classes (the argmax would be the same either way: the softmax
denominator is common to all categories).
"""

import numpy as np

from model_metamers.errors import UserError
from model_metamers import resources

N_IMAGENET = 1000


class LogitsShapeError(UserError, ValueError):
    """Logits whose width does not fit ImageNet-1000 plus the offset."""


def categories():
    """The 16 category names, in the fixed order of the probability columns."""
    return list(resources.imagenet_16class_indices())


def category_of(imagenet_index):
    """The 16-way category of a 0-based ImageNet-1000 class, or None if it belongs to none."""
    for name, members in resources.imagenet_16class_indices().items():
        if int(imagenet_index) in members:
            return name
    return None


def imagenet_probabilities(logits, logit_offset=0):
    """Softmax over the 1000 ImageNet classes: ``[batch, 1000]`` float64.

    Args:
      logits: ``[batch, 1000 + logit_offset]`` (or one vector), numpy or tensor.
      logit_offset: leading non-ImageNet logits (1 for the background class).
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != N_IMAGENET + logit_offset:
        raise LogitsShapeError(
            'expected logits [batch, %d] (1000 ImageNet classes + logit_offset %d), got shape %s: '
            'pass the network\'s info["logit_offset"]' % (N_IMAGENET + logit_offset, logit_offset,
                                                          z.shape))
    z = z[:, logit_offset:]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def probabilities_16(logits, logit_offset=0):
    """``[batch, 16]`` mean softmax probability of each category's member classes (Geirhos)."""
    p = imagenet_probabilities(logits, logit_offset)
    groups = resources.imagenet_16class_indices()
    return np.stack([p[:, members].mean(axis=1) for members in groups.values()], axis=1)


def sixteen_class_names(logits, logit_offset=0):
    """The 16-way decision per row of ``logits``: a list of category names."""
    names = categories()
    return [names[i] for i in np.argmax(probabilities_16(logits, logit_offset), axis=1)]


classify_16 = sixteen_class_names
