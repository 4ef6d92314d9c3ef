"""Natural images in and metamer images out, in the [0, 1] pixel space the image networks take.

Loading follows the original ``metamer_helpers.use_image_path_specified_image``:
read as 8-bit RGB (grayscale replicated, alpha dropped), crop the central
square (the original's index arithmetic), resize it to the network's size,
keep 8-bit levels (``scipy.misc.imresize`` returned uint8) and divide by 255.
Decoding uses TensorFlow's decoders (PNG, JPEG, GIF, BMP) and tensorflow-io's (TIFF,
WebP); alpha is dropped.
"""

import os

import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.fileio import atomic_path
from model_metamers.op_errors import op_error_text


# What a folder of images is scanned for (lower-case suffixes).
FILE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.gif', '.bmp', '.tif', '.tiff', '.webp')


class ImageLoadError(UserError, ValueError):
    """An image file that is missing or cannot be read, or an array that is not an image."""


def _decode_other(data):
    """TIFF or WebP (which ``tf.io.decode_image`` does not read) through tensorflow-io, or None."""
    head = data[:12]
    if head[:4] in (b'II*\x00', b'MM\x00*'):
        from tensorflow_io import experimental as tfio_experimental
        decode = tfio_experimental.image.decode_tiff  # first page, as RGBA
    elif head[:4] == b'RIFF' and head[8:12] == b'WEBP':
        import tensorflow_io as tfio
        decode = tfio.image.decode_webp  # RGBA
    else:
        return None
    return decode(tf.constant(data))[..., :3]


def _read_rgb(path):
    """``[H, W, 3]`` uint8 tensor of the file at ``path`` (PNG, JPEG, GIF, BMP, TIFF, WebP)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageLoadError('image file %s does not exist: give the path of a PNG or JPEG file' % path)
    try:
        with open(path, 'rb') as f:
            data = f.read()
        image = _decode_other(data)
        if image is None:
            image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    except (tf.errors.OpError, ValueError, OSError) as e:
        raise ImageLoadError('cannot decode %s as an image (%s): give a PNG or JPEG file'
                             % (path, op_error_text(e))) from None
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageLoadError('image file %s is empty (0 pixels): give a non-empty image' % path)
    return image


def center_crop_square(image):
    """The central ``s x s`` square of ``[H, W, C]``, ``s = min(H, W)``.

    Bounds as the original: ``int(H/2 - s/2) : int(H/2 + s/2)`` (and for W).
    """
    h, w = int(image.shape[0]), int(image.shape[1])
    s = min(h, w)
    top, bottom = int(h / 2 - s / 2), int(h / 2 + s / 2)
    left, right = int(w / 2 - s / 2), int(w / 2 + s / 2)
    return image[top:bottom, left:right]


def prepare_image(image, size=224, quantize=True):
    """Crop and resize a decoded image for a network: float32 ``[size, size, 3]`` in [0, 1].

    Args:
      image: ``[H, W, 3]`` uint8 (0..255) array or tensor, e.g. from ``tf.io.decode_image``.
      size: side of the square output in pixels.
      quantize: round the resized image to 8-bit levels before scaling, as the
        original's uint8 ``imresize`` did.

    Central square (see :func:`center_crop_square`), then bilinear resizing with
    antialiasing (PIL's bilinear filter, which ``imresize`` used, widens its
    kernel when shrinking); no resize when the crop already has the size.
    """
    size = int(size)
    if size <= 0:
        raise ImageLoadError('image size must be a positive number of pixels, got %d' % size)
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3 or image.shape[2] != 3:
        raise ImageLoadError('prepare_image needs an RGB image [H, W, 3], got shape %s: decode with '
                             'channels=3' % (tuple(image.shape),))
    image = tf.cast(center_crop_square(image), tf.float32)
    if image.shape[0] != size:
        image = tf.image.resize(image, (size, size), method='bilinear', antialias=True)
        if quantize:
            image = tf.clip_by_value(tf.round(image), 0.0, 255.0)
    return (image / 255.0).numpy().astype(np.float32)


def read_rgb(path):
    """The decoded file at ``path`` as it is: uint8 ``[H, W, 3]`` array (no crop, no resize).

    Raises :class:`ImageLoadError` for a missing, unreadable or empty file.
    """
    return _read_rgb(path).numpy()


def load_image(path, size=224, quantize=True):
    """Load an image file for a network: float32 ``[size, size, 3]`` in [0, 1].

    Args:
      path: a PNG / JPEG (/ GIF / BMP) file; grayscale and RGBA are converted to RGB.
      size: side of the square output in pixels (224 for VGG-19, 299 for
        Inception-V3 and ResNet-101-V2; or ``network.input_shape[0]``).
      quantize: see :func:`prepare_image`.

    Raises :class:`ImageLoadError` for a missing, unreadable or empty file.
    """
    return prepare_image(_read_rgb(path), size, quantize)


def load_image_for(network, path, **kwargs):
    """:func:`load_image` at the input size of ``network`` (a ``MetamerNetwork``)."""
    return load_image(path, size=network.input_shape[0], **kwargs)


def to_uint8(image):
    """``[H, W, 3]`` (or ``[H, W]``, ``[H, W, 1]``) in [0, 1] -> uint8 ``[H, W, C]``, rounded.

    Values are clipped to [0, 1] first (synthesis keeps them there; clipping
    only absorbs round-off). Raises :class:`ImageLoadError` on a wrong shape or NaN.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageLoadError('an image must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape %s'
                         % (image.shape,))
    if not np.all(np.isfinite(image)):
        raise ImageLoadError('the image holds NaN or infinite values; cannot save it')
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_png(path, image):
    """Write ``image`` (values in [0, 1]) as an 8-bit PNG, atomically (temp file + rename).

    Creates the folder if needed. Returns the path.
    """
    path = os.fspath(path)
    data = tf.io.encode_png(to_uint8(image)).numpy()
    with atomic_path(path, '.png') as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
    return path
