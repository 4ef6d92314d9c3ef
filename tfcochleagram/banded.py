"""Analytic subband envelopes computed over each filter's band only.

The rFFT path of the cochleagram takes, for every filter ``k``, the length-``T``
inverse FFT of the one-sided spectrum times the filter (zero outside the
filter's ``W_k`` nonzero bins), and keeps the modulus. Only the modulus is
used, so the band can be moved down to bin 0 (a unit-modulus factor on the
time signal), and the ``T``-point inverse FFT of a sequence that is zero past
bin ``L >= W_k`` splits, for ``T = M * L``, into ``M`` inverse FFTs of length
``L``: with ``n = M*t + s`` (``s < M``, ``t < L``),

    z_k[M t + s] = (1/M) * ifft_L(Y_k[q] * exp(2 pi i q s / T))[t],

``Y_k`` being the filtered band. That is ``T log L`` instead of ``T log T``
operations per filter (0.62x for the word networks' 211 filters, whose bands are
49 to 5092 bins wide), the same numbers to float32 round-off.

``M`` is chosen to divide the downsampling factor ``D``: a block of ``D``
consecutive envelope samples is then a whole number ``R = D / M`` of ``t``
steps for every ``s``, and the blocked downsampler reads the envelopes in
their ``[M, L]`` order after one reordering inside each block (none when
``M = D``), without an interleave back to time order.
"""

import numpy as np
import tensorflow as tf


def band_lengths(signal_length, block):
    """The inverse-FFT lengths ``L`` usable for ``T = signal_length``, ``D = block``:
    ``L`` divides ``T`` and ``M = T / L`` divides ``D`` (ascending)."""
    return sorted(signal_length // m for m in range(1, block + 1)
                  if block % m == 0 and signal_length % m == 0)


class BandedEnvelopes:
    """Moduli of the analytic subbands of the rFFT path, one chain per group of filters.

    Args:
      filters: ``[n_filters, F]`` real filterbank on the one-sided bins
        (``F = T/2 + 1``); each filter's nonzero bins must be contiguous.
      signal_length: ``T`` (even).
      block: the downsampling factor ``D`` (``T`` a multiple of it).
      max_share: no chain gets more than this share of the inverse-FFT work
        (groups of one ``L`` are split), so that TF's executor can spread the
        chains over the cores (TF's CPU FFT kernel is single-threaded).

    Filters are grouped by the smallest usable ``L`` covering their band.
    ``chains`` lists, per chain, the filter indices it computes.
    """

    def __init__(self, filters, signal_length, block, max_share=0.25):
        filters = np.asarray(filters, np.float64)
        T, D = int(signal_length), int(block)
        if T % D:
            raise ValueError('the banded envelopes need T (%d) to be a multiple of the '
                             'downsampling factor (%d)' % (T, D))
        n_filters, n_bins = filters.shape
        if n_bins != T // 2 + 1:
            raise ValueError('filters must cover the %d one-sided bins, got %d'
                             % (T // 2 + 1, n_bins))
        lengths = band_lengths(T, D)
        lo = np.zeros(n_filters, np.int64)
        need = np.zeros(n_filters, np.int64)
        for k, row in enumerate(filters):
            nonzero = np.flatnonzero(row)
            if nonzero.size == 0:
                nonzero = np.array([0])
            if nonzero[-1] - nonzero[0] + 1 != nonzero.size:
                raise ValueError('filter %d has a band with holes; use the full inverse FFT' % k)
            lo[k], need[k] = nonzero[0], nonzero.size
        band_len = np.array([min(L for L in lengths if L >= w) for w in need])
        cost = {L: np.sum(band_len == L) * T * np.log2(L) for L in set(band_len.tolist())}
        total = sum(cost.values())

        self.signal_length, self.block, self.n_bins = T, D, n_bins
        self.chains = []
        self._constants = []
        for L in sorted(cost):
            rows = np.flatnonzero(band_len == L)
            pieces = max(1, int(np.ceil(cost[L] / (max_share * total) - 1e-9)))
            for part in np.array_split(rows, pieces):
                self.chains.append(part)
                self._constants.append(self._chain_constants(filters, part, lo[part], L))
        order = np.concatenate(self.chains)
        self.inverse_order = None if np.array_equal(order, np.arange(n_filters)) else \
            tf.constant(np.argsort(order).astype(np.int32))

    def _chain_constants(self, filters, rows, lo, L):
        T, n_bins = self.signal_length, self.n_bins
        M = T // L
        q = np.arange(L)
        index = np.minimum(lo[:, None] + q[None, :], n_bins - 1)
        inside = lo[:, None] + q[None, :] < n_bins
        band = np.where(inside, filters[rows[:, None], index], 0.0)
        # exp(2 pi i q s / T) / M, the phase reduced mod T in integers before the float64 exp.
        phase = (np.arange(M)[:, None] * q[None, :]) % T
        twiddle = np.exp(2j * np.pi * phase / T) / M
        return dict(
            index=tf.constant(index.astype(np.int32)),
            band=tf.constant(band.astype(np.float32)),
            band_complex=tf.constant(band.astype(np.complex64)),
            twiddle_real=tf.constant(twiddle.real.astype(np.float32)),
            twiddle_imag=tf.constant(twiddle.imag.astype(np.float32)),
            # Backwards: TF's gradient of ifft_L is fft_L(g) / L, that of the product the
            # conjugate twiddle.
            twiddle_adjoint=tf.constant((np.conj(twiddle) / L).astype(np.complex64)),
            steps_per_block=tf.constant(self.block // M, tf.int32))

    def analytic(self, spectrum, chain):
        """``spectrum`` ``[batch, 1, F]`` complex64 -> ``[batch, n_chain, M, L]`` complex64:
        element ``[b, k, s, t]`` is the analytic subband of filter ``chains[chain][k]``
        at sample ``M t + s``, times a unit-modulus factor."""
        c = self._constants[chain]
        n_bins = self.n_bins

        @tf.custom_gradient
        def subbands(spectrum):
            z = tf.signal.ifft(_twiddled_bands(spectrum, c['index'], c['band'],
                                               c['twiddle_real'], c['twiddle_imag']))

            def grad(g):
                batch = tf.shape(g)[0]
                per_bin = _band_adjoint(tf.signal.fft(g), c['twiddle_adjoint'],
                                        c['band_complex'])
                per_bin = tf.reshape(per_bin, [batch, -1])
                # Neighbouring bands overlap: sum each bin's contributions (in real
                # arithmetic, which every device's segment sum supports).
                def scatter(part):
                    return tf.transpose(tf.math.unsorted_segment_sum(
                        tf.transpose(part), tf.reshape(c['index'], [-1]), n_bins))
                return tf.complex(scatter(tf.math.real(per_bin)),
                                  scatter(tf.math.imag(per_bin)))[:, None, :]

            return z, grad

        return subbands(spectrum)

    def moduli_in_blocks(self, spectrum, chain):
        """``spectrum`` ``[batch, 1, F]`` -> the envelope moduli of chain ``chain`` as
        ``[batch * n_chain, D, T / D]``: column ``j`` holds samples ``D j .. D j + D - 1``
        in time order, as :meth:`BlockedDownsampler.from_blocks` reads them."""
        return _blocked_modulus(self.analytic(spectrum, chain),
                                self._constants[chain]['steps_per_block'])

    def restore_order(self, rows_in_chain_order):
        """``[batch, n_filters, ...]`` in chain order -> filter order."""
        if self.inverse_order is None:
            return rows_in_chain_order
        return tf.gather(rows_in_chain_order, self.inverse_order, axis=1)


# One pass writing [batch, n, M, L] complex values. XLA fuses the gather, the filter and the
# twiddle into it; written in real arithmetic, which XLA's CPU backend vectorises (its complex
# products it does not): 2.2 vs 3.3 ms for the largest chain of the word networks, against
# 5 ms for TF's broadcasting complex Mul. The signatures of the compiled functions leave every
# dimension open, so each is traced once for all chains and graphs (XLA compiles once per shape).
@tf.function(jit_compile=True, input_signature=[
    tf.TensorSpec([None, 1, None], tf.complex64), tf.TensorSpec([None, None], tf.int32),
    tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None, None], tf.float32),
    tf.TensorSpec([None, None], tf.float32)])
def _twiddled_bands(spectrum, index, band, twiddle_real, twiddle_imag):
    bands = tf.gather(spectrum[:, 0, :], index, axis=1)
    re = (tf.math.real(bands) * band)[:, :, None, :]
    im = (tf.math.imag(bands) * band)[:, :, None, :]
    return tf.complex(re * twiddle_real - im * twiddle_imag, re * twiddle_imag + im * twiddle_real)


def _band_adjoint(spectra, twiddle_adjoint, band):
    # TF's own Mul and Sum: its reduction over the M axis beats XLA's on CPU (3.3 vs 4.7 ms).
    return tf.reduce_sum(spectra * twiddle_adjoint, axis=2) * band


def _blocked_modulus(z, R):
    """``|z|`` of ``[batch, n, M, L]`` subbands, reordered to ``[batch * n, M * R, L / R]``.

    Within block ``j`` (``R`` steps of ``t``, an int32 scalar), sample ``D j + M r + s`` sits
    at ``z[..., s, R j + r]``; time order is ``(r, s)``. XLA fuses the modulus and the
    reordering (and, backwards, the reordering and the modulus gradient of
    ``graph.complex_modulus``) into one pass each.
    """
    @tf.custom_gradient
    def modulus(z):
        return _blocked_abs(z, R), lambda g: _blocked_abs_grad(g, z, R)

    return modulus(z)


_SUBBANDS = tf.TensorSpec([None, None, None, None], tf.complex64)
_STEPS = tf.TensorSpec([], tf.int32)  # R: XLA compiles for its value


@tf.function(jit_compile=True, input_signature=[_SUBBANDS, _STEPS])
def _blocked_abs(z, R):
    shape = tf.shape(z)
    m = tf.reshape(tf.abs(z), [-1, shape[2], shape[3] // R, R])
    return tf.reshape(tf.transpose(m, [0, 3, 1, 2]), [-1, shape[2] * R, shape[3] // R])


@tf.function(jit_compile=True,
             input_signature=[tf.TensorSpec([None, None, None], tf.float32), _SUBBANDS, _STEPS])
def _blocked_abs_grad(g, z, R):
    shape = tf.shape(z)
    g = tf.reshape(g, [-1, R, shape[2], shape[3] // R])
    g = tf.reshape(tf.transpose(g, [0, 2, 3, 1]), shape)
    # The same operations per element as graph.complex_modulus's gradient.
    scale = tf.math.divide_no_nan(g, tf.abs(z))
    return tf.complex(scale * tf.math.real(z), scale * tf.math.imag(z))
