"""TensorFlow 2 cochleagrams, numerically faithful to the original TF1 tfcochleagram.

Main entry points:

* :func:`cochleagram` / :func:`cochleagram_stages`: functional API on ``[batch, T]`` waveforms.
* :class:`Cochleagram`: the same as a Keras layer.
* :func:`make_erb_cos_filters_nx`: the ERB cosine filterbank (numpy).
* :data:`WORD_CONFIG`: the front end of the Feather et al. 2019 audio networks
  (20 kHz, 2 s -> ``[211, 400, 1]``).
"""

from tfcochleagram.compression import COMPRESSIONS, clipped_point3
from tfcochleagram.downsampling import make_downsample_filter
from tfcochleagram.erb_filters import (erb2freq, freq2erb, make_erb_cos_filters_nx,
                                       make_full_filter_set, num_filters)
from tfcochleagram.graph import (DEFAULTS, ENVELOPE_IMPLS, STAGES, WORD_CONFIG, WORD_SIGNAL_LENGTH,
                                 WORD_SR, CochleagramGraph, cochleagram, cochleagram_stages)
from tfcochleagram.layer import Cochleagram

__all__ = [
    'COMPRESSIONS', 'DEFAULTS', 'ENVELOPE_IMPLS', 'STAGES', 'WORD_CONFIG', 'WORD_SIGNAL_LENGTH',
    'WORD_SR', 'Cochleagram', 'CochleagramGraph', 'clipped_point3', 'cochleagram', 'cochleagram_stages',
    'erb2freq', 'freq2erb', 'make_downsample_filter', 'make_erb_cos_filters_nx',
    'make_full_filter_set', 'num_filters',
]
