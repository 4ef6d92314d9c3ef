"""Issue 20 point 5 for image networks: the 2023 null's ImageNet training augmentation.

Expected numbers are computed here from the 2023 definitions written out in numpy
(``robustness/data_augmentation.py`` of model_metamers_pytorch and the torchvision
transforms it composes), not with the package's functions.
"""

import math
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow as tf

from model_metamers import null_distribution as nd
from model_metamers.training import image_augment as ia
from tests import toy_networks
from tests.conftest import REPO

# The 2023 constants, typed in from robustness/data_augmentation.py.
EIGVAL = np.array([0.2175, 0.0188, 0.0045])
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                   [-0.5808, -0.0045, -0.8140],
                   [-0.5836, -0.6948, 0.4203]])


def gray(x):
    return 0.299 * x[..., 0:1] + 0.587 * x[..., 1:2] + 0.114 * x[..., 2:3]


def jitter_2023(x, name, f):
    """torchvision ColorJitter's adjustments (PIL ImageEnhance blends), clipped to [0, 1]."""
    if name == 'brightness':      # blend(black, img, f)
        out = f * x
    elif name == 'contrast':      # blend(mean of the grayscale image, img, f)
        out = gray(x).mean() + f * (x - gray(x).mean())
    else:                         # saturation: blend(grayscale image, img, f)
        out = gray(x) + f * (x - gray(x))
    return np.clip(out, 0, 1)


def lighting_2023(x, alpha):
    """Lighting.__call__: eigvec * alpha (broadcast over rows) * eigval, summed over columns."""
    rgb = (EIGVEC * alpha[None, :] * EIGVAL[None, :]).sum(1)
    return x + rgb[None, None, :]


def torchvision_crop(height, width, tries):
    """RandomResizedCrop.get_params (scale 0.08..1, ratio 3/4..4/3) for given uniform draws."""
    for area_u, log_ratio, top_u, left_u in tries:
        target = height * width * area_u
        aspect = math.exp(log_ratio)
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(top_u * (height - h + 1)), int(left_u * (width - w + 1)), h, w
    if width / height < 3 / 4:
        w, h = width, round(width / (3 / 4))
    elif width / height > 4 / 3:
        h, w = height, round(height * 4 / 3)
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def random_image(shape, seed):
    return (np.random.RandomState(seed).rand(*shape) * 255).round().astype(np.uint8)


def write_pngs(folder, shapes):
    folder.mkdir()
    paths = []
    for i, shape in enumerate(shapes):
        path = str(folder / ('im%d.png' % i))
        tf.io.write_file(path, tf.io.encode_png(random_image(shape, i)))
        paths.append(path)
    return paths


# ---------------------------------------------------------------- the transform
def test_flip_jitter_and_lighting_follow_the_2023_formulas():
    img = random_image((12, 12, 3), 0)
    img[:3] = 250  # bright rows: brightness and contrast above 1 clip them
    factors, alpha = (1.08, 0.93, 1.06), (0.04, -0.07, 0.02)
    x = img[:, ::-1].astype(np.float64) / 255  # flipped; no crop or resize (box = image = size)
    for order in [(2, 0, 1), (0, 1, 2)]:
        params = ia.Draw(0, 0, 12, 12, True, order, factors, alpha)
        want = x
        for i in order:
            want = jitter_2023(want, ('brightness', 'contrast', 'saturation')[i], factors[i])
        want = lighting_2023(want, np.array(alpha))
        got = ia.apply(img, params, 12)
        assert got.dtype == np.float32 and got.shape == (12, 12, 3)
        np.testing.assert_allclose(got, want, atol=2e-6)
    # The order matters (clipping), and the lighting offset is not clipped (as in 2023).
    a = ia.apply(img, ia.Draw(0, 0, 12, 12, True, (2, 0, 1), factors, alpha), 12)
    b = ia.apply(img, ia.Draw(0, 0, 12, 12, True, (0, 1, 2), factors, alpha), 12)
    assert not np.allclose(a, b, atol=1e-5)
    bright = ia.apply(np.full((4, 4, 3), 255, np.uint8), ia.Draw(0, 0, 4, 4, False, (0, 1, 2),
                                                                (1.0, 1.0, 1.0), (-0.05, 0, 0)), 4)
    np.testing.assert_allclose(bright[0, 0], 1 + (EIGVEC[:, 0] * -0.05 * EIGVAL[0]), atol=1e-6)
    assert bright.max() > 1.0


def test_the_crop_is_taken_from_the_original_image_then_resized():
    img = np.zeros((40, 60, 3), np.uint8)
    img[:20, :30] = (200, 100, 50)   # top-left block
    img[:20, 30:] = (10, 220, 90)    # top-right block
    same = {'order': (0, 1, 2), 'factors': (1.0, 1.0, 1.0), 'alpha': (0.0, 0.0, 0.0)}
    block = ia.apply(img, ia.Draw(top=0, left=0, height=20, width=30, flip=False, **same), 8)
    np.testing.assert_allclose(block, np.broadcast_to(np.array([200, 100, 50]) / 255, (8, 8, 3)), atol=1e-6)
    # A box over both blocks, flipped: the right-hand colour comes out on the left.
    both = ia.apply(img, ia.Draw(top=0, left=10, height=20, width=40, flip=True, **same), 8)
    np.testing.assert_allclose(both[:, 0], np.broadcast_to(np.array([10, 220, 90]) / 255, (8, 3)), atol=1e-6)
    np.testing.assert_allclose(both[:, -1], np.broadcast_to(np.array([200, 100, 50]) / 255, (8, 3)),
                               atol=1e-6)


def test_crop_box_is_torchvisions_rule():
    lo, hi = math.log(3 / 4), math.log(4 / 3)
    cases = [
        (50, 80, [(0.5, 0.1, 0.3, 0.9)]),                           # first try fits
        (50, 80, [(1.0, hi, 0.5, 0.5), (1.0, lo, 0.2, 0.7), (0.2, 0.0, 0.99, 0.0)]),  # too wide, too tall
        (10, 100, [(0.5, 0.0, 0.5, 0.5)] * 10),                     # never fits: widest allowed, centred
        (100, 10, [(0.5, 0.0, 0.5, 0.5)] * 10),                     # never fits: tallest allowed, centred
    ]
    for height, width, tries in cases:
        want = torchvision_crop(height, width, tries)
        got = ia.crop_box(height, width, *zip(*tries))
        assert got == want, (height, width, got, want)
    assert ia.crop_box(10, 100, *zip(*[(0.5, 0.0, 0.5, 0.5)] * 10)) == (0, 43, 10, 13)


def test_drawn_parameters_respect_the_2023_bounds():
    height, width = 60, 80
    draws = [ia.draw(height, width, 0, p) for p in range(150)]
    for d in draws:
        assert 0 <= d.top and d.top + d.height <= height and 0 <= d.left and d.left + d.width <= width
        # w, h are rounded: the unrounded box had area fraction in [0.08, 1] and ratio in [3/4, 4/3].
        assert 0.08 * height * width <= (d.width + 0.5) * (d.height + 0.5)
        assert (d.width - 0.5) * (d.height - 0.5) <= height * width
        assert 3 / 4 <= (d.width + 0.5) / (d.height - 0.5) and (d.width - 0.5) / (d.height + 0.5) <= 4 / 3
        assert sorted(d.order) == [0, 1, 2]
        assert all(0.9 <= f <= 1.1 for f in d.factors)
    flips = np.mean([d.flip for d in draws])
    assert 0.35 < flips < 0.65
    alphas = np.array([d.alpha for d in draws]).ravel()  # N(0, 0.05^2)
    assert 0.04 < alphas.std() < 0.06 and abs(alphas.mean()) < 0.01
    assert len({d.order for d in draws}) == 6
    areas = np.array([d.width * d.height / (height * width) for d in draws])
    assert areas.min() < 0.2 and areas.max() > 0.8  # the whole scale range is used


# ------------------------------------------------------------------ the null
def test_each_position_draws_its_own_augmentation_and_shards_agree(tmp_path):
    net = toy_networks.build_toy_image()
    files = write_pngs(tmp_path / 'ims', [(30, 40, 3), (25, 25, 3), (40, 22, 3), (18, 33, 3), (50, 50, 3)])
    images = nd.source_images(files)
    assert len(images) == 5 and images[np.array([2])][0].shape == (40, 22, 3)  # the original size
    augment = nd.image_training_augmentation(net, seed=1)
    first = augment(images[np.array([0])], np.array([0]))
    assert first.shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(first, augment(images[np.array([0])], np.array([0])))
    # Position 5 is image 0 again (5 images): another draw. Another seed: another draw.
    assert not np.allclose(first, augment(images[np.array([0])], np.array([5])))
    assert not np.allclose(first, nd.image_training_augmentation(net, seed=2)(images[np.array([0])],
                                                                               np.array([0])))
    whole = nd.compute_null(net, images, layers=['relu1'], num_pairs=4, pairing='consecutive',
                            augment=augment, batch_size=3)
    parts = {k: nd.compute_null(net, images, layers=['relu1'], num_pairs=4, pairing='consecutive',
                                augment=augment, num_shards=2, shard_index=k, batch_size=2)
             for k in (1, 0)}  # the later shard first
    for key in ('pairs', 'spearman', 'pearson', 'snr_db_2023'):
        np.testing.assert_allclose(np.concatenate([parts[0]['relu1'][key], parts[1]['relu1'][key]]),
                                   whole['relu1'][key], atol=1e-6)
    # Pair 2 is positions 4 and 5: image 4 and image 0 again, drawn afresh.
    acts = net.activations(np.concatenate([augment(images[np.array([4, 0])], np.array([4, 5]))]),
                           ['relu1'])['relu1'].numpy().reshape(2, -1)
    import scipy.stats
    assert whole['relu1']['spearman'][2] == pytest.approx(scipy.stats.spearmanr(acts[0], acts[1])[0],
                                                          abs=1e-5)


def test_tfrecord_images_are_kept_encoded_and_decoded_at_full_size(tmp_path):
    path = str(tmp_path / 'ims.tfrecord')
    originals = [random_image((21, 13, 3), 7), random_image((9, 30, 3), 8)]
    with tf.io.TFRecordWriter(path) as w:
        for image in originals:
            feature = {'signal': tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[tf.io.encode_png(image).numpy()]))}
            w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    images = nd.source_images([path])
    assert len(images) == 2
    for got, want in zip(images[np.array([1, 0])], originals[::-1]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(nd.NullDistributionError, match='no feature'):
        nd.source_images([path], feature='image')


def test_augment_settings_that_do_not_apply_are_refused():
    nd.check_augment('image', 'consecutive', True)
    nd.check_augment('audio', 'consecutive', True, ['background_dir'])
    nd.check_augment('image', 'random', False, ['background_dir'])  # no --augment: nothing to check
    with pytest.raises(nd.NullDistributionError, match='drop --background_dir'):
        nd.check_augment('image', 'consecutive', True, ['background_dir'])
    with pytest.raises(nd.NullDistributionError, match='drop --snr_low --snr_high'):
        nd.check_augment('image', 'consecutive', True, ['snr_low', 'snr_high'])
    with pytest.raises(nd.NullDistributionError, match='--pairing=consecutive'):
        nd.check_augment('image', 'random', True)
    with pytest.raises(nd.NullDistributionError, match='needs --background_dir'):
        nd.check_augment('audio', 'consecutive', True)
    with pytest.raises(nd.NullDistributionError, match='image_training_augmentation'):
        nd.training_augmentation(toy_networks.build_toy_image(), 'bg')
    with pytest.raises(nd.NullDistributionError, match='not images'):
        nd.image_training_augmentation(toy_networks.build_toy_audio())


@pytest.mark.slow  # two subprocesses that import TensorFlow
def test_null_cli_consecutive_augmented_image_pairs(tmp_path):
    files = write_pngs(tmp_path / 'ims', [(30, 40, 3), (25, 25, 3), (40, 22, 3), (18, 33, 3), (50, 50, 3),
                                          (20, 20, 3)])
    out = tmp_path / 'null.h5'
    code = ('import sys; sys.argv=["nd"]+sys.argv[1:]; import tests.toy_networks; '
            'from model_metamers import null_distribution as nd; '
            'from model_metamers import cli; cli.run(nd.main, nd._define_flags)')
    args = [sys.executable, '-c', code, '--network=toy_image', '--weights=random',
            '--dataset=%s' % (tmp_path / 'ims'), '--num_pairs=3', '--pairing=consecutive', '--augment',
            '--seed=4', '--layers=relu1', '--output=%s' % out]
    bad = subprocess.run(args + ['--background_dir=%s' % tmp_path], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 1 and 'Traceback' not in bad.stderr and not os.path.exists(out)
    assert bad.stderr.strip().splitlines()[-1].startswith('error: --background_dir is for the waveform')
    run = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    with h5py.File(out, 'r') as f:
        assert f.attrs['pairing'] == 'consecutive' and f.attrs['n_stimuli'] == 6
        assert 'RandomResizedCrop' in f.attrs['augment'] and 'crop side 16' in f.attrs['augment']
        np.testing.assert_array_equal(f['relu1']['pairs'][()], [[0, 1], [2, 3], [4, 5]])
        spearman = f['relu1']['spearman'][()]
    # The same null in this process, from the full-size files with the same seed.
    want = nd.compute_null(toy_networks.build_toy_image(), nd.source_images(files), layers=['relu1'],
                           num_pairs=3, pairing='consecutive',
                           augment=nd.image_training_augmentation(toy_networks.build_toy_image(), seed=4))
    np.testing.assert_allclose(spearman, want['relu1']['spearman'], atol=1e-6)
