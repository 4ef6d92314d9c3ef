"""ERB-spaced half-cosine filterbank, built in numpy (float64).

The filters are the frequency-domain responses that the original tfcochleagram
took from pycochleagram's ``make_erb_cos_filters_nx``. The construction below
follows that function step by step (same grid, same strict inequalities, same
order of floating-point operations) so that the float32-rounded result equals
the filter constant of the original graph exactly.
"""

import warnings

import numpy as np

# Glasberg & Moore constants of the ERB-number scale.
_EAR_Q = 9.265
_MIN_BW = 24.7


def freq2erb(freq_hz):
    """ERB number of a frequency in Hz (array or scalar)."""
    return _EAR_Q * np.log(1 + freq_hz / (_MIN_BW * _EAR_Q))


def erb2freq(n_erb):
    """Frequency in Hz of an ERB number (inverse of :func:`freq2erb`)."""
    return _MIN_BW * _EAR_Q * (np.exp(n_erb / _EAR_Q) - 1)


def _frequency_grid(signal_length, sr):
    """Non-negative FFT bin frequencies (Hz) of a signal of ``signal_length`` samples."""
    if signal_length % 2 == 0:
        n_freqs = signal_length // 2
        max_freq = sr / 2
    else:
        # Odd lengths have no Nyquist bin; the grid stops just below it.
        n_freqs = (signal_length - 1) // 2
        max_freq = sr * (signal_length - 1) / 2 / signal_length
    return np.linspace(0, max_freq, n_freqs + 1), n_freqs, max_freq


def make_full_filter_set(filts, signal_length=None):
    """Extend ``[n_freqs+1, n_filters]`` filters to all FFT bins.

    Returns ``[n_filters, signal_length]``: the non-negative bins followed by the
    mirrored negative bins, in ``np.fft.fft`` order (DC and, for even lengths,
    Nyquist appear once).
    """
    if signal_length is None:
        signal_length = 2 * filts.shape[0] - 1
    if signal_length % 2 == 0:
        negative = np.flipud(filts[1:filts.shape[0] - 1, :])
    else:
        negative = np.flipud(filts[1:filts.shape[0], :])
    return np.vstack((filts, negative)).T


def make_erb_cos_filters_nx(signal_length, sr, n, low_lim, hi_lim, sample_factor,
                            padding_size=None, full_filter=True, strict=True,
                            no_lowpass=False, no_highpass=False):
    """Build the overcomplete ERB cosine filterbank.

    Args:
      signal_length: number of samples of the signal the filters apply to.
      sr: sampling rate in Hz.
      n: number of filters that tile the range at ``sample_factor=1``.
      low_lim, hi_lim: edges (Hz) of the band-pass tiling.
      sample_factor: overcompleteness S (1 or even).
      padding_size: extra zero samples the caller will append; the filters are
        made for ``signal_length + padding_size`` samples.
      full_filter: return filters over all FFT bins (``[n_filters, L]``) instead
        of the non-negative bins (``[L//2+1, n_filters]``).
      strict: raise instead of warn for an odd ``sample_factor`` or a
        ``hi_lim`` above Nyquist.
      no_lowpass, no_highpass: drop the S low-pass / S high-pass edge filters.

    Returns:
      ``(filts, center_freqs, freqs)``: the filters (float64, layout above),
      the centre frequency of every filter in Hz (``[n_filters]``, low-pass
      and high-pass included whether or not they are dropped), and the grid of
      non-negative bin frequencies in Hz (``[L//2+1]``).
    """
    if not isinstance(sample_factor, (int, np.integer)) or isinstance(sample_factor, bool):
        raise ValueError('sample_factor must be an integer, got %r' % (sample_factor,))
    if sample_factor <= 0:
        raise ValueError('sample_factor must be positive, got %d' % sample_factor)
    if sample_factor != 1 and sample_factor % 2 != 0:
        msg = ('sample_factor=%d is odd, which changes the ERB filter widths; '
               'use 1 or an even value (or strict=False)' % sample_factor)
        if strict:
            raise ValueError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)

    if padding_size is not None and padding_size >= 1:
        signal_length += padding_size

    freqs, n_freqs, max_freq = _frequency_grid(signal_length, sr)

    if hi_lim > sr / 2:
        msg = ('hi_lim=%s Hz is above the Nyquist frequency %s Hz; lower it or '
               'pass strict=False to clamp it' % (hi_lim, sr / 2))
        if strict:
            raise ValueError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        hi_lim = max_freq

    s = int(sample_factor)
    n_bandpass = s * (n + 1) - 1
    filts = np.zeros((n_freqs + 1, n_bandpass + 2 * s))

    # Centres are evenly spaced in ERB; the end points only set the spacing.
    centers, erb_step = np.linspace(freq2erb(low_lim), freq2erb(hi_lim), n_bandpass + 2,
                                    retstep=True)
    centers = centers[1:-1]

    freqs_erb = freq2erb(freqs)
    for i in range(n_bandpass):
        lo = centers[i] - s * erb_step
        hi = centers[i] + s * erb_step
        inside = (freqs_erb > lo) & (freqs_erb < hi)
        mid = (lo + hi) / 2
        width = hi - lo
        filts[inside, i + s] = np.cos((freqs_erb[inside] - mid) / width * np.pi)

    # Edge filters complete the squared response to one below the first and
    # above the last band-pass centres.
    for i in range(s):
        lp_top = np.max(np.where(freqs < erb2freq(centers[i]))[0])
        filts[:lp_top + 1, i] = np.sqrt(1 - np.power(filts[:lp_top + 1, i + s], 2))
        hp_bottom = np.min(np.where(freqs > erb2freq(centers[-1 - i]))[0])
        filts[hp_bottom:, -1 - i] = np.sqrt(1 - np.power(filts[hp_bottom:, -1 - i - s], 2))

    filts = filts / np.sqrt(s)

    cfs_low = np.copy(centers[:s]) - s * erb_step
    cfs_high = np.copy(centers[-s:]) + s * erb_step
    center_freqs = erb2freq(np.concatenate((cfs_low, centers, cfs_high)))
    center_freqs[center_freqs < 0] = 1

    if no_lowpass:
        filts = filts[:, s:]
    if no_highpass:
        filts = filts[:, :-s]

    if full_filter:
        filts = make_full_filter_set(filts, signal_length)
    return filts, center_freqs, freqs


def num_filters(n, sample_factor, no_lowpass=False, no_highpass=False):
    """Number of filters ``make_erb_cos_filters_nx`` returns."""
    count = sample_factor * (n + 1) - 1 + 2 * sample_factor
    return count - sample_factor * bool(no_lowpass) - sample_factor * bool(no_highpass)
