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
