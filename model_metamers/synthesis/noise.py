"""Initial noise for synthesis (SPEC §4)."""

import numpy as np


def pink_noise(n_samples, seed=0, rms=0.1, scale=0.1):
    """Pink-noise waveform used to start audio metamers.

    Recipe of the original: complex Gaussian rFFT coefficients (real parts drawn
    first, then imaginary) with ``numpy.random.RandomState(seed)``, bin ``k``
    divided by ``sqrt(k+1)`` (power ∝ 1/(k+1)), inverse rFFT, scaled to RMS
    ``rms``, mean removed, times ``scale``: RMS ≈ 0.01 by default.

    Returns float32 ``[n_samples]``.
    """
    rng = np.random.RandomState(seed)
    odd = n_samples % 2
    n_bins = n_samples // 2 + 1 + odd
    coeffs = rng.randn(n_bins) + 1j * rng.randn(n_bins)
    coeffs = coeffs / np.sqrt(np.arange(n_bins) + 1.0)
    noise = np.fft.irfft(coeffs).real
    if odd:
        noise = noise[:-1]
    noise = noise * (rms / np.sqrt(np.mean(noise ** 2)))
    return ((noise - np.mean(noise)) * scale).astype(np.float32)


def image_noise(shape, seed=0, scale=0.1, offset=0.5):
    """``uniform[0,1) * scale + offset`` image noise (float32, ``shape`` e.g. ``[224, 224, 3]``)."""
    rng = np.random.RandomState(seed)
    return (rng.random_sample(shape) * scale + offset).astype(np.float32)


# What each procedure starts from (the result file records the name).
NOISE_2019 = 'feather2019'  # pink noise (audio) / uniform [0.5, 0.6) (images)
NOISE_2023 = 'feather2023'  # N(0, 1) * 1e-7 (audio) / N(0.5, 0.05^2) clamped to [0, 1] (images)


def white_noise(shape, seed=0, scale=1e-7):
    """``N(0, 1) * scale`` white noise (float32, ``shape``): the 2023 code's audio start.

    The 2023 scripts draw it with torch's generator; ours is
    ``numpy.random.RandomState(seed).standard_normal`` (same distribution, other numbers).
    """
    rng = np.random.RandomState(seed)
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def gaussian_image_noise(shape, seed=0, mean=0.5, sd=0.05, clamp=(0.0, 1.0)):
    """``N(mean, sd^2)`` clamped to ``clamp`` (float32, ``shape``): the 2023 code's image start."""
    rng = np.random.RandomState(seed)
    return np.clip(rng.standard_normal(shape) * sd + mean, clamp[0], clamp[1]).astype(np.float32)


def initial_noise(kind, modality, shape, seed=0):
    """The seeded starting stimulus of procedure ``kind`` (``NOISE_2019`` / ``NOISE_2023``).

    Returns ``(stimulus float32 [shape], description)``; the description names the
    distribution and goes into the result file.
    """
    shape = tuple(int(s) for s in shape)
    if kind == NOISE_2019:
        if modality == 'image':
            return image_noise(shape, seed), 'uniform[0.5, 0.6) (feather2019)'
        wave = pink_noise(int(np.prod(shape)), seed).reshape(shape)
        return wave, 'pink noise, RMS 0.1 x 0.1, mean removed (feather2019)'
    if kind == NOISE_2023:
        if modality == 'image':
            return gaussian_image_noise(shape, seed), 'N(0.5, 0.05^2) clamped to [0, 1] (feather2023)'
        return white_noise(shape, seed), 'N(0, 1) x 1e-7 white noise (feather2023)'
    raise ValueError('unknown initial noise %r; choose %s or %s' % (kind, NOISE_2019, NOISE_2023))
