"""Seconds per synthesis iteration: the TF2 engine vs the original TF1 session loop.

Run by hand (not part of ``make test``)::

    .venv/bin/python bench/bench_synthesis.py                      # every network, CPU
    .venv/bin/python bench/bench_synthesis.py --networks=word_reduced_aliasing --batches=1
    .venv/bin/python bench/bench_synthesis.py --json=bench/results.json

For each network, at its shallowest and deepest metamer layer, batch 1 and 8,
with and without XLA, it measures the median time per Adam iteration over
repeated timed blocks after a warm-up, and the peak memory (process RSS on CPU,
the allocator's peak on GPU). Each measurement runs in its own process.

The baseline, for the networks of the 2019 paper (the others are timed on the
TF2 engine alone), is the original procedure as the TF1 code ran it: a
``tf.compat.v1`` graph of the same network (the tests' independent reference
graphs: ``tf.layers`` audio networks with the original dense ``kernel ⊗ identity``
Hanning pooling, the TF-Slim image networks), the cochleagram with the
original strided-conv2d downsampling, ``AdamOptimizer`` with
``exponential_decay``, and one ``session.run(train_op)`` per iteration.
The ratio TF2 / TF1 is printed per configuration.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# The networks of the 2019 paper: the TF1 loop (the baseline) exists for these. The other
# registered networks (VGGish, DeepSpeech, the keyword-spotting models) are timed on the TF2
# engine alone.
PAPER_NETWORKS = ['word_aliased', 'word_reduced_aliasing', 'word_reduced_aliasing_random',
                  'audioset_reduced_aliasing', 'word_audioset_reduced_aliasing',
                  'vgg_19', 'inception_v3', 'resnet_v2_101']


def _peak_memory_mb():
    import resource

    import tensorflow as tf
    gpus = tf.config.list_logical_devices('GPU')
    if gpus:
        try:
            return tf.config.experimental.get_memory_info('GPU:0')['peak'] / 2 ** 20
        except (ValueError, RuntimeError):  # graph mode without an eager context on this device
            return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _layers(net):
    """(shallowest, deepest) metamer layers, skipping the input representation."""
    front_ends = ('cochleagram', 'log_mel', 'mfcc', 'input', net.representation_stage)
    layers = [l for l in net.metamer_layers if net.resolve(l) not in front_ends]
    return layers[0], layers[-1]


def _natural(net, batch):
    import numpy as np
    rng = np.random.RandomState(0)
    if net.modality == 'image':
        return rng.rand(batch, *net.input_shape).astype(np.float32)
    x = rng.randn(batch, *net.input_shape)
    return (0.1 * x / x.std()).astype(np.float32)


def _time_blocks(run_block, block, repeats, warmup):
    import numpy as np
    for _ in range(warmup):
        run_block(block)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_block(block)
        times.append((time.perf_counter() - t0) / block)
    return float(np.median(times))


def measure_tf2(network, layer, batch, xla, block, repeats, envelope_impl='banded'):
    from model_metamers import networks
    from model_metamers.synthesis import MetamerSynthesizer

    # Only the paper's audio networks take the option; the default needs no keyword.
    options = {} if envelope_impl == 'banded' else {'envelope_impl': envelope_impl}
    net = networks.build(network, weights='random', **options)
    layer = {'shallow': _layers(net)[0], 'deep': _layers(net)[1]}.get(layer, layer)
    synth = MetamerSynthesizer(net, _natural(net, batch), layer, jit_compile=xla)

    def run(n):
        synth._run_chunk(n).numpy()
        synth.step += n

    sec = _time_blocks(run, block, repeats, warmup=1)
    return {'seconds_per_iteration': sec, 'peak_memory_mb': _peak_memory_mb(), 'layer': layer}


def _tf1_audio(network, x):
    """Cochleagram (original strided-conv2d downsampling) + the tests' TF1 ``tf.layers`` network."""
    import tensorflow as tf

    import tfcochleagram
    from model_metamers.networks.audio.audio_cnn import N_CLASSES, VARIANTS
    from tf1_reference import audio as ref

    if network not in VARIANTS:
        raise ValueError('no TF1 original: %s is a TF2 model of the follow-up study' % network)
    variant = VARIANTS[network]
    keys = {'word': ref.WORD_KEY, 'audioset': ref.AUDIOSET_KEY}
    graph = tfcochleagram.CochleagramGraph(40000, 20000, downsample_impl='conv2d',
                                           **tfcochleagram.WORD_CONFIG)
    graph.fast_gradients = False  # the original's ops and TF's own gradients
    coch = graph(x)
    with tf.compat.v1.variable_scope('brain_network'):
        nets = ref.brain_network(coch, variant.architecture,
                                 {keys[t]: N_CLASSES[t] for t in variant.tasks})
    nets['cochleagram'] = coch
    nets['logits'] = nets['fc_top'][keys[variant.tasks[0]]]
    return nets


def measure_tf1(network, layer, batch, block, repeats):
    """The original loop: one ``session.run(train_op)`` per iteration."""
    import numpy as np
    import tensorflow as tf

    from model_metamers import networks

    net = networks.build(network, weights='random')  # layer names and shapes only
    layer = {'shallow': _layers(net)[0], 'deep': _layers(net)[1]}.get(layer, layer)
    natural = _natural(net, batch)
    v1 = tf.compat.v1
    v1.disable_eager_execution()

    @tf.custom_gradient
    def jittered_relu(z):
        return tf.nn.relu(z), lambda dy: dy

    with tf.Graph().as_default():
        x = v1.Variable(natural * 0.1)
        if net.modality == 'audio':
            nets = _tf1_audio(network, x)
            # conv_<i> / fc_intermediate are pre-ReLU tensors in the original naming.
            rep = jittered_relu(nets[layer]) if layer in net.relu_stages else nets[layer]
        else:
            from tf1_reference import slim as slim_reference
            logits, end_points = slim_reference._network(network, slim_reference._preprocess(network, x))
            # slim keeps ResNet's squeezed logits out of end_points; it returns them.
            rep = dict(end_points, logits=logits)[net.resolve(layer)]
        target = np.zeros(rep.shape.as_list(), np.float32)
        loss = tf.nn.l2_loss(target - rep)
        step = v1.Variable(0, trainable=False)
        rate = v1.train.exponential_decay(0.001, step, 1000, 0.95)
        train = v1.train.AdamOptimizer(rate).minimize(loss, var_list=[x], global_step=step)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())

            def run(n):
                for _ in range(n):
                    sess.run(train)

            sec = _time_blocks(run, block, repeats, warmup=1)
    return {'seconds_per_iteration': sec, 'peak_memory_mb': _peak_memory_mb(), 'layer': layer}


def _child(args):
    if args.engine == 'tf2':
        out = measure_tf2(args.network, args.layer, args.batch, args.xla, args.block, args.repeats,
                          args.envelope_impl)
    else:
        out = measure_tf1(args.network, args.layer, args.batch, args.block, args.repeats)
    print('RESULT ' + json.dumps(out))


def _child_env(allocator):
    """Environment of a measurement process: glibc malloc (``system``) or tcmalloc preloaded."""
    from model_metamers.allocator import ENV_SWITCH, find_tcmalloc
    env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}
    env[ENV_SWITCH] = 'system'
    if allocator == 'tcmalloc':
        env['LD_PRELOAD'] = find_tcmalloc()
    return env


def _run_child(engine, network, layer, batch, xla, block, repeats, timeout, allocator='system',
               envelope_impl='banded'):
    cmd = [sys.executable, os.path.abspath(__file__), '--child', '--engine', engine, '--network', network,
           '--layer', layer, '--batch', str(batch), '--block', str(block), '--repeats', str(repeats),
           '--envelope_impl', envelope_impl]
    if xla:
        cmd.append('--child_xla')
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env=_child_env(allocator))
    except subprocess.TimeoutExpired:
        return {'error': 'timeout after %d s' % timeout}
    for line in proc.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[7:])
    return {'error': (proc.stderr.strip().splitlines() or ['no output'])[-1][:300]}


def _gpu_names():
    """', GPU: <names>' from nvidia-smi, or '' on a machine without one."""
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''
    return ', GPU: %s' % '; '.join(out.splitlines()) if out else ''


def _save_rows(path, previous, rows):
    """Write ``previous + rows`` to ``path`` atomically after every row, so a long run that is
    stopped keeps what it measured."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(previous + rows, f, indent=1)
    os.replace(tmp, path)


def _row(network, layer, batch, xla, alloc, runs, envelope_impl='banded'):
    """One table row from ``runs``, a list of (TF2 result, TF1 result or None) per round."""
    tf2s = [res.get('seconds_per_iteration') for res, _ in runs]
    tf1s = [(base or {}).get('seconds_per_iteration') for _, base in runs]
    ratios = [a / b for a, b in zip(tf2s, tf1s) if a and b]
    errors = [res.get('error') or (base or {}).get('error') for res, base in runs]
    med = lambda values: float(statistics.median(values)) if values else None  # noqa: E731
    return dict(network=network, layer=layer, layer_name=runs[0][0].get('layer'), batch=batch,
                xla=xla, allocator=alloc, envelope_impl=envelope_impl, tf2=med([v for v in tf2s if v]),
                tf1=med([v for v in tf1s if v]), ratio=med(ratios), rounds=len(runs),
                ratios=ratios, peak_mb=max([res.get('peak_memory_mb') or 0 for res, _ in runs]) or None,
                tf1_peak_mb=max([(base or {}).get('peak_memory_mb') or 0 for _, base in runs]) or None,
                error=next((e for e in errors if e), None))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--networks', default='all',
                   help="comma-separated names, or 'all' (every registered network; default) or 'paper'")
    p.add_argument('--layers', default='shallow,deep', help="'shallow', 'deep' or layer names")
    p.add_argument('--batches', default='1,8')
    p.add_argument('--xla', default='off,on')
    p.add_argument('--baseline', default='on', help="'off' skips the TF1 loop")
    p.add_argument('--envelope_impls', default='banded',
                   help="the cochleagram's envelope_impl for the TF2 engine: 'banded' (default), 'full' "
                        "or both comma-separated (paper audio networks; the TF1 loop is measured once)")
    p.add_argument('--allocators', default=None,
                   help="'system' (glibc malloc), 'tcmalloc' or both comma-separated; both engines of "
                        "a row run with the same one (default: both when tcmalloc is installed)")
    p.add_argument('--block', type=int, default=5, help='iterations per timed block')
    p.add_argument('--repeats', type=int, default=3, help='timed blocks (median reported)')
    p.add_argument('--rounds', type=int, default=1,
                   help='measure each row this many times, alternating TF1 and TF2 processes, and '
                        'report the medians and the median of the per-round ratios (a shared '
                        'machine drifts by tens of percent between minutes)')
    p.add_argument('--timeout', type=int, default=1800)
    p.add_argument('--json', default=None, help='append results to this JSON file')
    # child mode
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--engine', default='tf2', help=argparse.SUPPRESS)
    p.add_argument('--network', default=None, help=argparse.SUPPRESS)
    p.add_argument('--layer', default=None, help=argparse.SUPPRESS)
    p.add_argument('--batch', type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument('--child_xla', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--envelope_impl', default='banded', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.xla = args.child_xla
        return _child(args)

    import platform

    from model_metamers.allocator import find_tcmalloc
    if args.allocators is None:
        args.allocators = 'system,tcmalloc' if find_tcmalloc() else 'system'
    if 'tcmalloc' in args.allocators and not find_tcmalloc():
        p.error('tcmalloc is not installed (apt-get install libtcmalloc-minimal4)')
    previous = json.load(open(args.json)) if args.json and os.path.exists(args.json) else []
    from model_metamers import networks as registry
    names = {'all': ','.join(registry.list_networks()), 'paper': ','.join(PAPER_NETWORKS)}
    args.networks = names.get(args.networks, args.networks)
    rows = []
    print('machine: %s, %d CPU cores, python %s%s' % (platform.processor() or platform.machine(),
                                                     os.cpu_count(), platform.python_version(),
                                                     _gpu_names()))
    print('%-30s %-8s %-16s %5s %4s %-8s %-6s %10s %10s %7s %9s' % (
        'network', 'layer', 'name', 'batch', 'xla', 'malloc', 'envel.', 'tf2 s/it', 'tf1 s/it', 'ratio',
        'peak MB'))
    for network in args.networks.split(','):
        for layer in args.layers.split(','):
            for batch, alloc in [(int(b), a) for b in args.batches.split(',')
                                 for a in args.allocators.split(',')]:
                baselines = []
                for xla, envelopes in [(x == 'on', e) for x in args.xla.split(',')
                                       for e in args.envelope_impls.split(',')]:
                    runs = []
                    for round_index in range(args.rounds):
                        if (args.baseline == 'on' and network in PAPER_NETWORKS
                                and len(baselines) <= round_index):
                            baselines.append(_run_child('tf1', network, layer, batch, False, args.block,
                                                        args.repeats, args.timeout, alloc))
                        base = baselines[round_index] if baselines else None
                        runs.append((_run_child('tf2', network, layer, batch, xla, args.block,
                                                args.repeats, args.timeout, alloc, envelopes), base))
                    row = _row(network, layer, batch, xla, alloc, runs, envelopes)
                    rows.append(row)
                    fmt = lambda v, f: (f % v) if isinstance(v, float) else '-'  # noqa: E731
                    spread = ('%.3f-%.3f' % (min(row['ratios']), max(row['ratios']))
                              if len(row['ratios']) > 1 else '')
                    print('%-30s %-8s %-16s %5d %4s %-8s %-6s %10s %10s %7s %9s %s %s' % (
                        network, layer, row['layer_name'] or '?', batch, 'on' if xla else 'off', alloc,
                        envelopes,
                        fmt(row['tf2'], '%.4f'), fmt(row['tf1'], '%.4f'), fmt(row['ratio'], '%.3f'),
                        fmt(row['peak_mb'], '%.0f'), spread, row['error'] or ''), flush=True)
                    if args.json:
                        _save_rows(args.json, previous, rows)


if __name__ == '__main__':
    main()
