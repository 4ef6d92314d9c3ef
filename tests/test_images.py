"""Image loading / saving (model_metamers.images) and the 16-way ImageNet task (model_metamers.imagenet)."""

import os
import struct
import zlib

import numpy as np
import pytest

from model_metamers import images, imagenet, resources


def _png(path, array):
    """A PNG written by hand (zlib + chunks), independent of the code under test."""
    array = np.asarray(array, np.uint8)
    h, w = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b''.join(b'\x00' + array[i].tobytes() for i in range(h))

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, color, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
    return str(path)


def test_png_at_network_size_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    x = images.load_image(_png(tmp_path / 'a.png', a), 224)
    assert x.dtype == np.float32 and x.shape == (224, 224, 3)
    np.testing.assert_array_equal(x, a.astype(np.float32) / 255.0)


def test_center_crop_matches_original_index_arithmetic(tmp_path):
    # 7 x 4: rows int(3.5 - 2) = 1 .. int(3.5 + 2) = 5
    a = np.arange(7 * 4 * 3, dtype=np.uint8).reshape(7, 4, 3)
    x = images.load_image(_png(tmp_path / 'tall.png', a), 4)
    np.testing.assert_array_equal(x * 255.0, a[1:5].astype(np.float32))
    b = np.arange(3 * 6 * 3, dtype=np.uint8).reshape(3, 6, 3)  # cols int(3-1.5)=1 .. int(4.5)=4
    y = images.load_image(_png(tmp_path / 'wide.png', b), 3)
    np.testing.assert_array_equal(y * 255.0, b[:, 1:4].astype(np.float32))


def test_grayscale_and_rgba_become_rgb(tmp_path):
    g = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    x = images.load_image(_png(tmp_path / 'g.png', g), 4)
    for c in range(3):
        np.testing.assert_array_equal(x[:, :, c] * 255.0, g.astype(np.float32))
    rgba = np.dstack([np.full((4, 4), v, np.uint8) for v in (10, 20, 30, 0)])
    y = images.load_image(_png(tmp_path / 'rgba.png', rgba), 4)
    np.testing.assert_allclose(y[0, 0] * 255.0, [10, 20, 30])  # alpha dropped, as PIL's convert('RGB')


def test_resize_of_constant_and_smooth_images(tmp_path):
    flat = np.full((40, 60, 3), 77, np.uint8)
    x = images.load_image(_png(tmp_path / 'flat.png', flat), 10)
    assert x.shape == (10, 10, 3)
    np.testing.assert_array_equal(x * 255.0, np.full((10, 10, 3), 77.0))
    ramp = np.repeat(np.repeat(np.linspace(0, 255, 40)[None, :, None], 40, 0), 3, 2).astype(np.uint8)
    y = images.load_image(_png(tmp_path / 'ramp.png', ramp), 20)
    assert np.all(np.diff(y[0, :, 0]) > 0)  # monotone, no aliasing artefacts
    assert abs(y.mean() - ramp.mean() / 255.0) < 2 / 255.0
    np.testing.assert_array_equal(np.round(y * 255.0), y * 255.0)  # 8-bit levels kept


def test_prepare_image_on_decoded_arrays(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(images.prepare_image(a, 16),
                                  images.load_image(_png(tmp_path / 'a.png', a), 16))
    with pytest.raises(images.ImageLoadError, match='channels=3'):
        images.prepare_image(a[:, :, :1], 16)


def test_demo_jpeg(tmp_path):
    x = images.load_image(resources.DEMO_IMAGES['pocketwatch'], 299)
    assert x.shape == (299, 299, 3) and 0 <= x.min() and x.max() <= 1 and x.std() > 0.05


def test_clear_errors(tmp_path):
    with pytest.raises(images.ImageLoadError, match='does not exist'):
        images.load_image(tmp_path / 'nope.png')
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'this is not an image')
    with pytest.raises(images.ImageLoadError, match='cannot decode') as err:
        images.load_image(bad)
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(images.ImageLoadError, match='shape'):
        images.save_png(tmp_path / 'x.png', np.zeros((2, 3, 5)))
    with pytest.raises(images.ImageLoadError, match='NaN'):
        images.save_png(tmp_path / 'x.png', np.full((2, 2, 3), np.nan))
    assert not os.path.exists(tmp_path / 'x.png')


@pytest.mark.parametrize('name,options', [('a.tif', {}), ('lzw.tiff', {'compression': 'tiff_lzw'}),
                                          ('a.webp', {'lossless': True})])
def test_tiff_and_lossless_webp_read_exactly(tmp_path, name, options):
    # tf.io.decode_image reads neither; tensorflow-io's decoders do (as RGBA, alpha dropped).
    Image = pytest.importorskip('PIL.Image')
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / name, **options)
    np.testing.assert_array_equal(images.load_image(tmp_path / name, 24),
                                  images.load_image(_png(tmp_path / 'a.png', a), 24))
    Image.fromarray(a[:, :, 0]).save(tmp_path / ('gray_' + name), **options)
    g = images.load_image(tmp_path / ('gray_' + name), 24)
    for c in range(3):
        np.testing.assert_array_equal(g[:, :, c] * 255.0, a[:, 4:28, 0].astype(np.float32))


def test_undecodable_file_error_has_no_tf_op_noise(tmp_path):
    for name, data in (('cut.png', b'\x89PNG\r\n\x1a\n' + b'\x00' * 40), ('bad.tif', b'II*\x00' + b'x' * 60)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(images.ImageLoadError, match='cannot decode') as err:
            images.load_image(tmp_path / name)
        text = str(err.value)
        assert len(text.splitlines()) == 1 and 'function_node' not in text and '[Op:' not in text, text


def test_save_png_round_trip_and_atomic(tmp_path):
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 256, (5, 7, 3))
    path = images.save_png(tmp_path / 'sub' / 'm.png', levels / 255.0)
    np.testing.assert_array_equal(images.load_image(path, 5) * 255.0,
                                  levels[:, 1:6].astype(np.float32))
    assert sorted(os.listdir(tmp_path / 'sub')) == ['m.png']  # no temp file left
    # slightly outside [0, 1] (round-off of the clip) is clipped, batch axis of 1 accepted
    images.save_png(tmp_path / 'c.png', np.full((1, 2, 2, 3), 1.0000001))
    np.testing.assert_array_equal(images.load_image(tmp_path / 'c.png', 2), np.ones((2, 2, 3)))


# ------------------------------------------------------------------ 16-way task
def _reference_16(logits, offset):
    """Geirhos' aggregation written out with loops over the JSON grouping."""
    z = np.asarray(logits, np.float64)[offset:]
    p = np.exp(z - z.max())
    p /= p.sum()
    groups = resources.imagenet_16class_indices()
    scores = {name: sum(p[i] for i in idx) / len(idx) for name, idx in groups.items()}
    return max(scores, key=scores.get), scores


@pytest.mark.parametrize('offset', [0, 1])
def test_16_class_aggregation(offset):
    rng = np.random.default_rng(offset)
    logits = rng.normal(0, 3, (6, 1000 + offset))
    got = imagenet.sixteen_class_names(logits, logit_offset=offset)
    probs = imagenet.probabilities_16(logits, logit_offset=offset)
    for row in range(6):
        name, scores = _reference_16(logits[row], offset)
        assert got[row] == name
        np.testing.assert_allclose(probs[row], [scores[c] for c in imagenet.categories()], rtol=1e-12)


def test_16_class_offset_and_membership():
    logits = np.zeros((1, 1001))
    logits[0, 404 + 1] = 20.0  # ImageNet 404 = airliner, behind the background logit
    assert imagenet.sixteen_class_names(logits, logit_offset=1) == ['airplane']
    assert imagenet.category_of(404) == 'airplane' and imagenet.category_of(0) is None
    assert resources.imagenet_classes()[404] == 'airliner'
    with pytest.raises(imagenet.LogitsShapeError, match='logit_offset'):
        imagenet.sixteen_class_names(logits, logit_offset=0)
    # A mean, not a sum: 'knife' (1 class) beats 'dog' (109 classes) holding twice its total mass.
    z = np.full(1000, -50.0)
    dogs = resources.imagenet_16class_indices()['dog']
    z[dogs] = np.log(1.0 / len(dogs))  # total dog mass 1 spread thinly
    z[499] = np.log(0.5)                # knife, one class, half that mass
    assert imagenet.sixteen_class_names(z) == ['knife']
