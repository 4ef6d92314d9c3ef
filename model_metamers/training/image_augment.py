"""The ImageNet training-time augmentation of the 2023 code, drawn per example position.

Feather et al. 2023 (``model_metamers_pytorch``) made the null distributions of
its image networks from training images put through the training transform
(``robustness/data_augmentation.py`` ``TRAIN_TRANSFORMS_IMAGENET``, the ImageNet
dataset's default in ``robustness/datasets.py``), in this order:

1. ``RandomResizedCrop``: a box of area fraction in ``[0.08, 1]`` and aspect
   ratio (width / height) in ``[3/4, 4/3]`` (log-uniform) of the *original*
   image, at most 10 tries, else the central crop of the widest allowed aspect;
   resized (bilinear) to ``size`` x ``size`` with 8-bit pixel values (PIL);
2. ``RandomHorizontalFlip`` with probability 1/2;
3. ``ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1)``: the three
   adjustments in a random order, each with a factor uniform in ``[0.9, 1.1]``:
   brightness ``f x``, contrast ``mean(gray) + f (x - mean(gray))``, saturation
   ``gray + f (x - gray)`` (gray = 0.299 R + 0.587 G + 0.114 B), each clipped to [0, 1];
4. ``Lighting(0.05, IMAGENET_PCA)`` after the conversion to [0, 1]: ``alpha ~
   N(0, 0.05^2)`` per channel; each pixel gets ``eigvec @ (alpha * eigval)``
   added, *not* clipped (the 2023 code does not clip it either).

Differences, by choice: the crop side is the network's input side (224 for
VGG-19, 299 for Inception-V3 and ResNet-101-V2; 2023's networks all took 224);
steps 3-4 run in float32 where PIL rounds to 8 bits after each adjustment
(differences of at most about 1/255 per step); bilinear resizing is TensorFlow's
with antialiasing, as our image loader (:func:`model_metamers.images.prepare_image`).

Randomness is stateless, a function of ``(seed, position)`` only (TensorFlow's
``stateless_*`` ops), so every shard of a null draws the same augmentation for
the same example position, whatever else it computes.
"""

import collections
import math

import numpy as np
import tensorflow as tf

# robustness/data_augmentation.py IMAGENET_PCA (from fb.resnet.torch).
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
                       (-0.5808, -0.0045, -0.8140),
                       (-0.5836, -0.6948, 0.4203))
SCALE = (0.08, 1.0)          # torchvision RandomResizedCrop defaults
RATIO = (3.0 / 4.0, 4.0 / 3.0)
CROP_TRIES = 10
FLIP_PROBABILITY = 0.5
JITTER = 0.1                 # brightness, contrast and saturation alike
LIGHTING_STD = 0.05
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # PIL's RGB -> L, which ColorJitter's PIL path uses
ADJUSTMENTS = ('brightness', 'contrast', 'saturation')

DESCRIPTION = ('ImageNet training transform of Feather 2023 (TRAIN_TRANSFORMS_IMAGENET): '
               'RandomResizedCrop(input side, scale 0.08..1, ratio 3/4..4/3), horizontal flip p=0.5, '
               'ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1), Lighting(0.05, IMAGENET_PCA)')

Draw = collections.namedtuple('Draw', 'top left height width flip order factors alpha')
Draw.__doc__ = """One example's augmentation parameters.

``top``, ``left``, ``height``, ``width``: the crop box in pixels of the original
image; ``flip``: bool; ``order``: indices into :data:`ADJUSTMENTS` in the order
applied; ``factors``: brightness, contrast, saturation factors (in that fixed
order, whatever ``order`` is); ``alpha``: the 3 lighting coefficients.
"""


def crop_box(height, width, area_u, log_ratio_u, top_u, left_u, scale=SCALE, ratio=RATIO):
    """torchvision ``RandomResizedCrop.get_params`` given its uniform draws.

    Args:
      height, width: the original image's size in pixels.
      area_u, log_ratio_u, top_u, left_u: one value per try (``CROP_TRIES`` of them):
        area fraction in ``scale``, log aspect ratio in ``log(ratio)``, and two
        uniforms in [0, 1) that place the box (``floor(u * (room + 1))``).

    Returns ``(top, left, h, w)``: the first try whose box fits, else the central
    crop (the whole image clipped to the nearest allowed aspect ratio).
    """
    area = height * width
    for a, lr, tu, lu in zip(area_u, log_ratio_u, top_u, left_u):
        target = area * float(a)
        aspect = math.exp(float(lr))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(tu * (height - h + 1)), int(lu * (width - w + 1)), h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        h, w = height, round(height * max(ratio))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def draw(height, width, seed, position):
    """The :class:`Draw` of example ``position`` of an ``height`` x ``width`` image (stateless)."""
    key = tf.constant([int(seed), int(position)], tf.int64)
    keys = tf.random.experimental.stateless_split(key, 8)

    def u(i, shape, lo=0.0, hi=1.0):
        return tf.random.stateless_uniform(shape, keys[i], lo, hi, tf.float64).numpy()

    top, left, h, w = crop_box(height, width, u(0, [CROP_TRIES], *SCALE),
                               u(1, [CROP_TRIES], math.log(RATIO[0]), math.log(RATIO[1])),
                               u(2, [CROP_TRIES]), u(3, [CROP_TRIES]))
    flip = bool(u(4, []) < FLIP_PROBABILITY)
    order = tuple(int(i) for i in np.argsort(u(5, [3]), kind='stable'))
    factors = tuple(float(f) for f in u(6, [3], 1.0 - JITTER, 1.0 + JITTER))
    alpha = tuple(float(a) for a in
                  tf.random.stateless_normal([3], keys[7], 0.0, LIGHTING_STD, tf.float64).numpy())
    return Draw(top, left, h, w, flip, order, factors, alpha)


def _gray(x):
    return tf.reduce_sum(x * tf.constant(GRAY_WEIGHTS, tf.float32), axis=-1, keepdims=True)


def adjust(x, name, factor):
    """One ColorJitter adjustment of ``x`` ``[H, W, 3]`` float32 in [0, 1]; clipped to [0, 1]."""
    factor = tf.constant(factor, tf.float32)
    if name == 'brightness':
        out = x * factor
    elif name == 'contrast':
        mean = tf.reduce_mean(_gray(x))
        out = mean + factor * (x - mean)
    elif name == 'saturation':
        gray = _gray(x)
        out = gray + factor * (x - gray)
    else:
        raise ValueError('unknown adjustment %r; one of %s' % (name, ', '.join(ADJUSTMENTS)))
    return tf.clip_by_value(out, 0.0, 1.0)


def lighting_shift(alpha):
    """The per-channel RGB offset ``eigvec @ (alpha * eigval)`` (float32 ``[3]``)."""
    vec = np.asarray(IMAGENET_PCA_EIGVEC, np.float64)
    return (vec @ (np.asarray(alpha, np.float64) * np.asarray(IMAGENET_PCA_EIGVAL))).astype(np.float32)


def apply(image, params, size):
    """Augment one image with the parameters ``params`` (a :class:`Draw`).

    Args:
      image: ``[H, W, 3]`` uint8 (0..255) array or tensor, the decoded original.
      params: where to crop, whether to flip, jitter order and factors, lighting alpha.
      size: side of the square output in pixels (the network's input side).

    Returns float32 ``[size, size, 3]``, in [0, 1] up to the lighting offset
    (a few hundredths at most).
    """
    image = tf.convert_to_tensor(image)
    box = image[params.top:params.top + params.height, params.left:params.left + params.width]
    x = tf.cast(box, tf.float32)
    if (params.height, params.width) != (size, size):
        # PIL resizes uint8 to uint8: keep 8-bit levels, as the image loader does.
        x = tf.clip_by_value(tf.round(tf.image.resize(x, (size, size), method='bilinear',
                                                      antialias=True)), 0.0, 255.0)
    x = x / 255.0
    if params.flip:
        x = x[:, ::-1]
    for i in params.order:
        x = adjust(x, ADJUSTMENTS[i], params.factors[i])
    return (x + lighting_shift(params.alpha)).numpy()


def augment(image, seed, position, size):
    """The 2023 training augmentation of ``image`` (``[H, W, 3]`` uint8) as example ``position``.

    Same ``(seed, position)`` and image: the same float32 ``[size, size, 3]`` output.
    """
    height, width = int(image.shape[0]), int(image.shape[1])
    return apply(image, draw(height, width, seed, position), size)
