"""Null-distribution throughput: rank-once pair statistics vs scipy.stats.spearmanr per pair.

    .venv/bin/python bench/bench_null.py [--features=913344] [--stimuli=40] [--pairs=400]

Activations are ReLU-like (about half exact zeros, so ties matter) at the size
of the largest audio layer (pool_0_0 / conv_0: 913,344 features). The rank-once
method ranks and standardises each stimulus once (cost per stimulus, amortised
over all its pairs), then each pair costs two float64 dot products. Reported:
pairs per second of both methods, and the speed-up for a paper-sized null
(1,000,000 pairs over the given number of stimuli).
"""

import argparse
import os
import sys
import time

import numpy as np
import scipy.stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from model_metamers.null_distribution import LayerSummary, sample_pairs  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--features', type=int, default=913344)
    p.add_argument('--stimuli', type=int, default=40)
    p.add_argument('--pairs', type=int, default=400)
    p.add_argument('--scipy_pairs', type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    acts = np.maximum(rng.standard_normal((args.stimuli, args.features), dtype=np.float32), 0)
    pairs = sample_pairs(args.stimuli, args.pairs, seed=0)

    t0 = time.perf_counter()
    summary = LayerSummary(acts)
    t_rank = (time.perf_counter() - t0) / args.stimuli
    t0 = time.perf_counter()
    spear, _, _ = summary.pair_statistics(pairs)
    t_pair = (time.perf_counter() - t0) / args.pairs

    t0 = time.perf_counter()
    ref = [scipy.stats.spearmanr(acts[i], acts[j]).correlation for i, j in pairs[:args.scipy_pairs]]
    t_scipy = (time.perf_counter() - t0) / args.scipy_pairs
    err = np.max(np.abs(np.asarray(ref) - spear[:args.scipy_pairs]))

    amortised = t_pair + 2 * t_rank * args.stimuli / args.pairs
    print('features %d, stimuli %d, pairs %d' % (args.features, args.stimuli, args.pairs))
    print('rank-once: %.3f s to rank one stimulus, %.4f s per pair -> %.1f pairs/s '
          '(%.1f pairs/s with ranking amortised over these pairs)'
          % (t_rank, t_pair, 1 / t_pair, 1 / amortised))
    print('scipy.stats.spearmanr per pair: %.3f s per pair -> %.2f pairs/s' % (t_scipy, 1 / t_scipy))
    print('speed-up per pair: %.0fx (max |rho difference| %.1e)' % (t_scipy / t_pair, err))
    million = 1e6 * t_pair + t_rank * args.stimuli
    print('1,000,000 pairs over %d stimuli: rank-once %.1f h, scipy %.1f h'
          % (args.stimuli, million / 3600, 1e6 * t_scipy / 3600))


if __name__ == '__main__':
    main()
