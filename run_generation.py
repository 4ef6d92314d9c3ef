"""Generate validated model metamers from the command line.

    python run_generation.py --network=word_reduced_aliasing --layer=conv_2 --input=speech.wav
    python run_generation.py --demo          # what `make demo` runs

A thin absl wrapper over :mod:`model_metamers.generation`; see README.md for the
output files. Errors are printed as one line and the exit status is 1.
"""

import os
import signal
import sys


def _interrupted_while_starting(signum, frame):
    # Ctrl-C during the imports (TensorFlow takes seconds): nothing is written yet, so no
    # traceback, just the same line as later on.
    sys.stderr.write('\ninterrupted: %s\n' % RESUME_HINT)
    os._exit(130)


RESUME_HINT = 'run the same command again to resume'
signal.signal(signal.SIGINT, _interrupted_while_starting)

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string('network', 'word_reduced_aliasing', 'registered network name (see --list_networks), '
                    'or your own Keras model: path/to/model.keras or package.module:function')
flags.DEFINE_string('layer', 'all', "metamer layer, comma-separated layers, or 'all'")
flags.DEFINE_string('weights', 'auto',
                    "'auto' (checkpoints/<network>.weights.h5), 'random', a converted .weights.h5 "
                    'file, or an original-format checkpoint prefix')
flags.DEFINE_string('input', None, 'audio or image file(s): comma-separated paths or a folder; '
                    'default: the demo sound / image shipped with the package')
flags.DEFINE_integer('iterations', None, 'optimisation steps (default 15000; feather2023: --stages x '
                     '--stage_iterations = 24000)')
flags.DEFINE_float('learning_rate', None, "Adam learning rate (default: the network's)")
flags.DEFINE_integer('seed', 0, 'seed of the initial noise (same noise for every layer)')
flags.DEFINE_string('output_dir', 'metamers_out', 'results go to <output_dir>/<network>/')
flags.DEFINE_integer('log_every', 1000, 'iterations between logged losses and snapshots')
flags.DEFINE_string('null_distribution', 'auto', "null distribution for the paper's pass criterion: "
                    "an HDF5 file of model_metamers.null_distribution, a published "
                    "*_null_dist_spearman_r.pckl, 'auto' (checkpoints/<network>.null.h5, else the "
                    "release's pickle under checkpoints/) or 'none'")
flags.DEFINE_boolean('jit_compile', False, 'compile the update loop with XLA')
flags.DEFINE_integer('batch_size', 1, 'inputs optimised together (same layer)')
flags.DEFINE_integer('num_shards', 1, 'split inputs x layers over this many jobs (cluster array)')
flags.DEFINE_integer('shard_index', 0, 'which shard this job runs (0-based)')
flags.DEFINE_string('tensorboard_dir', None, 'write loss curves, Spearman and audio/image summaries here')
flags.DEFINE_enum('procedure', 'feather2019', ['feather2019', 'feather2023'],
                  'optimisation procedure: the paper (default) or the 2023 follow-up')
flags.DEFINE_integer('stage_iterations', None, 'feather2023: iterations per stage; the step size is '
                     'halved after each stage (default 3000; the 2023 scripts\' -I)')
flags.DEFINE_integer('stages', None, 'feather2023: number of stages (default 8; the 2023 scripts\' -N); '
                     'the run is stages x stage_iterations unless --iterations says otherwise')
flags.DEFINE_boolean('modified_relu', True, 'match a ReLU layer through the modified ReLU (gradient '
                     '1 below zero; the paper\'s choice); --nomodified_relu: through the ReLU itself')
flags.DEFINE_enum('domain', 'stimulus', ['stimulus', 'cochleagram'],
                  'optimise the stimulus (default) or the cochleagram (audio networks)')
flags.DEFINE_integer('checkpoint_every', None, 'iterations between saved run states (default: log_every)')
flags.DEFINE_float('stop_threshold', None, 'stop early when the relative loss change over '
                   '--stop_window iterations is below this')
flags.DEFINE_integer('stop_window', None, 'window (iterations) of the early stop')
flags.DEFINE_boolean('figures', True, 'write a PNG figure per input (needs matplotlib)')
flags.DEFINE_boolean('merge', False, 'only assemble per-input files from shard parts, then exit')
flags.DEFINE_boolean('allow_incomplete', False, 'with --merge: assemble even when jobs of the sharded '
                     'run are missing or unreadable (they are listed)')
flags.DEFINE_boolean('demo', False, 'the embedded default: a trained network on its demo sound, '
                     '2 layers (word_reduced_aliasing when its converted checkpoint is in '
                     'checkpoints/, else the shipped trained kws_2d)')
flags.DEFINE_boolean('list_networks', False, 'print the registered networks and exit')
flags.DEFINE_boolean('list_layers', False, "print the network's metamer layers and exit")
# Your own network (--network=model.keras or package.module:function): what cannot be inferred.
from model_metamers import custom_network_flags as _custom  # noqa: E402

_custom.define_flags()

def _inputs(value):
    """``--input`` as a list of paths and folders (folders are expanded by the library)."""
    items = [item.strip() for item in (value or '').split(',') if item.strip()]
    return items or None


def settings_from_flags():
    from model_metamers.generation import GenerationSettings

    layers = None if FLAGS.layer in ('all', '') else [s.strip() for s in FLAGS.layer.split(',') if s.strip()]
    s = GenerationSettings(
        network=FLAGS.network, layers=layers, weights=FLAGS.weights, inputs=_inputs(FLAGS.input),
        iterations=FLAGS.iterations, learning_rate=FLAGS.learning_rate, seed=FLAGS.seed,
        output_dir=FLAGS.output_dir, log_every=FLAGS.log_every,
        null_distribution=FLAGS.null_distribution, jit_compile=FLAGS.jit_compile,
        batch_size=FLAGS.batch_size, num_shards=FLAGS.num_shards, shard_index=FLAGS.shard_index,
        tensorboard_dir=FLAGS.tensorboard_dir, procedure=FLAGS.procedure, domain=FLAGS.domain,
        checkpoint_every=FLAGS.checkpoint_every, stop_threshold=FLAGS.stop_threshold,
        stop_window=FLAGS.stop_window, figures=FLAGS.figures,
        stage_iterations=FLAGS.stage_iterations, stages=FLAGS.stages, modified_relu=FLAGS.modified_relu,
        **_custom.options_from_flags(FLAGS))
    if FLAGS.demo:
        from model_metamers.demo import demo_settings
        demo = demo_settings()
        s.network, s.layers, s.weights = demo['network'], demo['layers'], demo['weights']
        s.iterations = FLAGS.iterations or demo['iterations']
        s.log_every = demo['log_every']
    return s


def run(argv):
    del argv
    from model_metamers import networks, results
    from model_metamers.networks import custom
    from model_metamers.generation import generate, network_folder, summary_table
    from model_metamers.native_logs import quiet_native_logs

    if FLAGS.list_networks:
        for name, (modality, text) in networks.describe_networks().items():
            print('%-32s %-6s %s' % (name, modality, text))
        return 0
    settings = settings_from_flags()
    if FLAGS.list_layers:
        quiet_native_logs()
        own = custom.is_spec(settings.network)
        net = (networks.load(settings.network, settings.weights, **settings.network_options())[0]
               if own else networks.build(settings.network, weights='random'))
        print(net.describe())
        if own:  # any stage can be matched with --layer, not only the default (activation) ones
            print('all stages: %s' % ', '.join(net.stage_names))
        return 0
    if FLAGS.merge:
        return _merge(settings)
    if FLAGS.demo:
        print('demo: %s, weights=%s, layers %s, %d iterations' % (
            settings.network, settings.weights, ','.join(settings.layers), settings.iterations))
    quiet_native_logs()  # XLA's I0000 lines ignore TF_CPP_MIN_LOG_LEVEL
    rows = generate(settings)
    print(summary_table(rows))
    out = os.path.abspath(network_folder(settings))
    if settings.num_shards > 1:
        print('parts in %s; when every shard has finished, run the same command with --merge '
              '(one .h5 per input; figures are not made by shards)' % os.path.join(out, results.PART_DIR))
    else:
        print('outputs in %s (one .h5 per input, WAV/PNG per layer%s)' % (
            out, ', <input>_figure.png' if settings.figures else ''))
    return 1 if any(r['status'] in ('diverged', 'unreadable part') for r in rows) else 0


def _merge(settings):
    """``--merge``: assemble the shards' parts; missing or unreadable ones are listed (exit 1)."""
    from model_metamers import results
    from model_metamers.generation import GenerationError, network_folder

    folder = network_folder(settings)
    if not results.stems_with_parts(folder):
        raise GenerationError('nothing to assemble: no shard results under %s; run the shards '
                              '(--num_shards, --shard_index) with this --output_dir and --network '
                              'first' % folder)
    missing, bad = results.merge_problems(folder)
    if (missing or bad) and FLAGS.allow_incomplete:
        print('warning: incomplete: %s' % results.describe_problems(missing, bad), file=sys.stderr)
    paths = results.merge(folder, allow_incomplete=FLAGS.allow_incomplete)
    print('assembled %d result file(s) in %s%s' % (len(paths), folder,
                                                   ' (incomplete)' if missing or bad else ''))
    return 0


def main(argv):
    # TensorFlow and the networks are imported while Ctrl-C still just exits (nothing is
    # written yet); from here on it raises KeyboardInterrupt, so that open temporary files
    # are removed, and the shared start-up prints it as one line.
    del argv  # checked by the start-up: only flags
    _import_libraries()
    from model_metamers import interrupts
    interrupts.install()
    return run(None)


def _import_libraries():
    """Import TensorFlow, Keras and the package's modules under the start-up handler.

    A KeyboardInterrupt raised inside an import can reach a library's
    ``except ImportError`` (optional dependencies) and be swallowed there, and
    the run would go on as if Ctrl-C had not been pressed (seen: a run of
    100000 iterations that kept running). Nothing is written before this returns.
    """
    import tensorflow  # noqa: F401
    import keras  # noqa: F401
    import scipy.stats  # noqa: F401
    from model_metamers import generation, results, validation  # noqa: F401
    from model_metamers.networks import custom  # noqa: F401
    from model_metamers.synthesis import synthesizer  # noqa: F401
    from model_metamers.native_logs import quiet_native_logs  # noqa: F401


def entry_point():
    from model_metamers import cli

    cli.run(main, interrupted_hint=RESUME_HINT)


if __name__ == '__main__':
    entry_point()
