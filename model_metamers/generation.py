"""Generate, validate and save metamers for a list of inputs and layers.

This is the library behind ``run_generation.py`` (notebooks can call it too)::

    from model_metamers.generation import GenerationSettings, generate
    rows = generate(GenerationSettings(network='word_reduced_aliasing', weights='random',
                                       layers=['pool_0_0'], iterations=300))

Work is split into jobs (input, layer). With ``num_shards > 1`` a job goes to
shard ``index % num_shards`` (inputs in the given order, layers in network
order), so an array job of N tasks covers every job exactly once; shards write
per-layer part files and :func:`model_metamers.results.merge` assembles them.
Runs are resumable: a finished (input, layer) with the same settings is
skipped, and an interrupted synthesis continues from its state file.
"""

import dataclasses
import glob
import hashlib
import os
import sys
import time

import numpy as np

from model_metamers.errors import UserError
from model_metamers import __version__
from model_metamers import networks as _networks
from model_metamers import published_nulls, resources, results, validation
from model_metamers.fileio import remove_stale_temp_files
from model_metamers.networks.checkpoints import CheckpointError, checkpoint_dir, default_weights_path
from model_metamers.progress import ProgressLine, table
from model_metamers.synthesis import MetamerSynthesizer


class GenerationError(UserError, ValueError):
    """Inconsistent generation settings (duplicate input names, bad shards, null without a layer)."""


@dataclasses.dataclass
class GenerationSettings:
    """Everything a generation run needs (the CLI flags of run_generation.py).

    ``layers=None`` means every metamer layer of the network. ``weights='auto'``
    uses the converted checkpoint ``checkpoints/<network>.weights.h5`` (random
    weights for the untrained network) and fails with instructions otherwise.
    ``iterations=None`` / ``learning_rate=None`` use the procedure's and the
    network's defaults. ``inputs=None`` uses the demo sound / image.
    """

    network: str = 'word_reduced_aliasing'
    layers: list = None
    weights: str = 'auto'
    inputs: list = None
    iterations: int = None
    learning_rate: float = None
    seed: int = 0
    output_dir: str = 'metamers_out'
    log_every: int = 1000
    null_distribution: str = 'auto'
    jit_compile: bool = False
    batch_size: int = 1
    num_shards: int = 1
    shard_index: int = 0
    tensorboard_dir: str = None
    procedure: str = 'feather2019'
    domain: str = 'stimulus'
    checkpoint_every: int = None
    stop_threshold: float = None
    stop_window: int = None
    figures: bool = True
    progress: bool = True
    # Issue 20: the 2023 schedule (feather2023 only; None = 3000 x 8) and the matched ReLU.
    stage_iterations: int = None
    stages: int = None
    modified_relu: bool = True


def _convert_once(network_name, original, path, log):
    """Convert a fetched original checkpoint to ``path`` on first use; the original if that fails.

    Later runs then load the by-name ``.weights.h5`` directly. A checkpoint
    folder that cannot be written keeps the original format (loaded on every run).
    """
    from model_metamers import convert_checkpoint
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if not os.access(os.path.dirname(path) or '.', os.W_OK):
        log('using %s as it is (%s is not writable, so it is not converted)'
            % (original, os.path.dirname(path)))
        return original
    log('converting %s to %s (once; later runs load the converted file) ...' % (original, path))
    start = time.time()
    try:
        _, net = convert_checkpoint.convert(network_name, original, output=path)
    except convert_checkpoint.ConversionError as exc:
        raise CheckpointError('cannot convert %s: %s' % (original, exc)) from None
    if net.info.get('weights_report'):
        log(net.info['weights_report'])
    log('converted in %.0f s' % (time.time() - start))
    return path


def resolve_weights(network_name, weights, log=None):
    """Turn ``'auto'`` into a concrete weights argument for ``networks.build``.

    ``'auto'``: the converted ``checkpoints/<network>.weights.h5``; else the
    published checkpoint in its original format if it is in ``checkpoints/``
    (fetched, or put there by hand), converted to that file on first use;
    random weights for the untrained network; otherwise an error that says
    how to get the weights. ``log``: where the conversion's progress lines go.
    """
    _networks.modality_of(network_name)  # unknown names fail here, with the list of networks
    if weights != 'auto':
        return weights
    path = default_weights_path(network_name)
    if os.path.exists(path):
        return path
    from model_metamers.networks import kws
    if network_name in kws.NETWORKS:  # trained here, not fetched: say how to train them
        raise kws.missing_weights_error(network_name, path)
    from model_metamers import fetch
    original = fetch.local_checkpoint(network_name)
    if original:
        return _convert_once(network_name, original, path, log)
    if network_name.endswith('_random'):
        return 'random'
    how = ('fetch the published checkpoint (python -m model_metamers.fetch --network=%s) or convert '
           'one (python -m model_metamers.convert_checkpoint --network=%s --checkpoint=PREFIX)'
           % (network_name, network_name) if network_name in fetch.SOURCES else
           'no public checkpoint is known for it: convert your own (python -m '
           'model_metamers.convert_checkpoint --network=%s --checkpoint=PREFIX)' % network_name)
    raise CheckpointError('no weights for %s in %s; %s, or pass --weights=random for an untrained '
                          'network' % (network_name, os.path.dirname(path), how))


def default_null_path(network_name):
    """``<checkpoint dir>/<network>.null.h5``: where ``null_distribution='auto'`` looks first."""
    return os.path.join(checkpoint_dir(), '%s.null.h5' % network_name)


def resolve_null(network_name, value, log=None):
    """The null-distribution file to validate with, or None.

    ``'auto'``: ``<checkpoint dir>/<network>.null.h5``, else the original
    release's pickle for the network found under the checkpoint folder (where
    ``python -m model_metamers.fetch`` unpacks it); ``None``/``''``/``'none'``:
    no null; anything else is a path. ``log`` gets one line saying which null
    is used, or that there is none and what that means for validation.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if value is None or str(value).lower() in ('', 'none'):
        return None
    if value != 'auto':
        return os.path.expanduser(str(value))
    for candidate in (default_null_path(network_name),
                      published_nulls.find(network_name, checkpoint_dir())):
        if candidate and os.path.isfile(candidate):
            log('null distribution: %s' % candidate)
            return candidate
    log('no null distribution for %s (%s, or the release\'s pickle): metamers are validated by '
        'the predicted class only, not by the paper\'s criterion' % (
            network_name, default_null_path(network_name)))
    return None


def weights_fingerprint(weights):
    """SHA-1 of the weight file(s) ``weights`` names, or ``'random'``.

    A ``.weights.h5`` or V1 checkpoint is one file; a V2 checkpoint prefix is
    every ``<prefix>.*`` file. Results record it, so that a rerun after the
    weights were retrained or replaced at the same path makes its metamers again.
    """
    if weights is None or weights == 'random':
        return 'random'
    path = os.path.expanduser(str(weights))
    if os.path.isdir(path):  # a folder of TF checkpoints: build() loads its latest
        import tensorflow as tf
        path = tf.train.latest_checkpoint(path) or path
    files = [path] if os.path.isfile(path) else sorted(glob.glob(glob.escape(path) + '.*'))
    digest = hashlib.sha1()
    for name in files:
        digest.update(os.path.basename(name).encode())
        with open(name, 'rb') as f:
            for block in iter(lambda: f.read(1 << 22), b''):
                digest.update(block)
    return digest.hexdigest()


def default_inputs(network):
    return [resources.demo_input(network.name, network.modality)]


def input_extensions(modality):
    """Lower-case file suffixes a folder of ``'audio'`` or ``'image'`` inputs is scanned for."""
    if modality == 'image':
        from model_metamers.images import FILE_EXTENSIONS
    else:
        from model_metamers.audio import FILE_EXTENSIONS
    return FILE_EXTENSIONS


def expand_inputs(items, modality):
    """Input files from paths and folders; a folder gives its sorted files of ``modality``.

    Files named directly are kept whatever their suffix (the loader judges them);
    a folder with no file of the modality's suffixes is an error.
    """
    paths = []
    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            ext = input_extensions(modality)
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.lower().endswith(ext) and not os.path.isdir(os.path.join(item, f)))
            if not found:
                noun = 'images' if modality == 'image' else 'sounds'
                raise GenerationError('folder %s holds no %s files (%s); give a folder of %s or '
                                      'name the files' % (item, modality, ', '.join(ext), noun))
            paths += found
        elif item:
            paths.append(item)
    return paths


def load_stimulus(network, path):
    """A natural input file as a network stimulus (``network.input_shape`` float32)."""
    if network.modality == 'image':
        from model_metamers import images
        return images.load_image(path, size=network.input_shape[0])
    from model_metamers import audio
    n = int(np.prod(network.input_shape))
    return audio.load_audio(path, sr=network.sample_rate, duration_s=n / network.sample_rate)


def stems_of(inputs):
    """Output file stems of the inputs; duplicate stems are an error."""
    stems = [os.path.splitext(os.path.basename(str(p)))[0] for p in inputs]
    seen = {}
    for path, stem in zip(inputs, stems):
        if stem in seen:
            raise GenerationError('inputs %s and %s share the name %r; rename one so their outputs '
                             'do not collide' % (seen[stem], path, stem))
        seen[stem] = path
    return stems


def check_settings(settings):
    """Reject numeric settings no run can use, before anything is built or written."""
    def bad(name, value, rule):
        flag = '--' + name
        raise GenerationError('%s must be %s, got %r; pass e.g. %s=%s' % (flag, rule, value, flag,
                                                                     _EXAMPLES[name]))

    if not 0 <= int(settings.seed) < 2 ** 32:
        bad('seed', settings.seed, 'in 0 .. 2**32-1')
    if int(settings.batch_size) < 1:
        bad('batch_size', settings.batch_size, 'at least 1')
    if settings.iterations is not None and int(settings.iterations) < 0:
        bad('iterations', settings.iterations, '0 or more')
    if settings.learning_rate is not None and not (np.isfinite(settings.learning_rate)
                                                    and settings.learning_rate > 0):
        bad('learning_rate', settings.learning_rate, 'a positive number')
    if int(settings.log_every) < 0:
        bad('log_every', settings.log_every, '0 (no log) or more')
    for name in ('checkpoint_every', 'stop_window', 'stage_iterations', 'stages'):
        value = getattr(settings, name)
        if value is not None and int(value) < 1:
            bad(name, value, 'at least 1')
    if settings.procedure == 'feather2019' and (settings.stage_iterations or settings.stages):
        raise GenerationError('--stage_iterations and --stages set the schedule of '
                              '--procedure=feather2023; drop them or pass --procedure=feather2023')
    if settings.stop_threshold is not None and not settings.stop_threshold >= 0:
        bad('stop_threshold', settings.stop_threshold, '0 or more')
    if int(settings.num_shards) < 1:
        bad('num_shards', settings.num_shards, 'at least 1')
    if not 0 <= int(settings.shard_index) < int(settings.num_shards):
        bad('shard_index', settings.shard_index, 'in 0 .. %d for --num_shards=%d'
            % (int(settings.num_shards) - 1, int(settings.num_shards)))
    if (settings.stop_window is not None and settings.log_every
            and int(settings.stop_window) % int(settings.log_every)):
        bad('stop_window', settings.stop_window, 'a multiple of --log_every=%d' % int(settings.log_every))


_EXAMPLES = dict(seed=0, batch_size=8, iterations=15000, learning_rate=0.001, log_every=1000,
                 checkpoint_every=1000, stop_window=2000, stop_threshold=1e-4, num_shards=10,
                 shard_index=0, stage_iterations=3000, stages=8)


def plan_jobs(n_inputs, layers, num_shards=1, shard_index=0):
    """This shard's ``(input index, layer)`` jobs, deterministic for a given input list."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise GenerationError('need num_shards >= 1 and 0 <= shard_index < num_shards, got %d and %d'
                              % (num_shards, shard_index))
    jobs = [(i, layer) for i in range(n_inputs) for layer in layers]
    return [job for k, job in enumerate(jobs) if k % num_shards == shard_index]


def _settings_attrs(settings, synth, weights, weights_id):
    return {'learning_rate': synth.learning_rate, 'iterations': synth.step,
            'requested_iterations': settings.iterations if settings.iterations is not None else -1,
            'seed': synth.seeds[0], 'weights': str(weights), 'weights_sha1': weights_id,
            'procedure': synth.procedure.name,
            'domain': synth.domain, 'modified_relu': synth.modified_relu,
            'log_every': synth.log_every, 'initial_noise': synth.initial_noise,
            'stage_iterations': getattr(synth.procedure, 'block_length', -1),
            'stages': getattr(synth.procedure, 'stages', -1),
            'package_version': __version__, 'network': synth.network.name}


NO_NULL_WARNING = ("no --null_distribution: 'passed' checks only that the metamer is classified like "
                   "its natural input ('class only' in the table); the paper's criterion also needs "
                   "rho above a null distribution (python -m model_metamers.null_distribution)")


def _finished_part(path, layer, settings, weights, weights_id, learning_rate):
    """The attributes of the part at ``path`` if it holds this job done with these settings, else None."""
    if not os.path.exists(path):
        return None
    try:
        attrs = results.read_result(path)[results.result_key(layer, settings.seed)]['attrs']
    except (OSError, KeyError, ValueError, RuntimeError):
        return None
    wanted_iter = settings.iterations if settings.iterations is not None else -1
    # Parts written before weights were fingerprinted have no weights_sha1: the path decides.
    same = (attrs.get('requested_iterations') == wanted_iter and attrs.get('seed') == settings.seed
            and attrs.get('weights') == str(weights)
            and attrs.get('weights_sha1', weights_id) == weights_id
            and attrs.get('procedure') == settings.procedure
            and attrs.get('domain') == settings.domain
            and bool(attrs.get('modified_relu', True)) == bool(settings.modified_relu)
            and (settings.procedure != 'feather2023' or (
                attrs.get('stage_iterations', 3000) == (settings.stage_iterations or 3000)
                and attrs.get('stages', 8) == (settings.stages or 8)))
            and np.isclose(attrs.get('learning_rate', np.nan), learning_rate))
    return attrs if same else None


def _validation_record(network, val):
    """``(attrs, datasets)`` a result stores for one :class:`validation.Validation`."""
    attrs = dict(val.as_attrs(), natural_class_name=_class_name(network, val.natural_class),
                 metamer_class_name=_class_name(network, val.metamer_class))
    datasets = {'spearman_all_layers': np.asarray(list(val.spearman_layers.values())),
                'spearman_layers': np.asarray(list(val.spearman_layers), dtype='S')}
    return attrs, datasets


def _revalidate_part(path, key, network, null):
    """Validate a finished part again (another or no null distribution) and rewrite it.

    Only validation is redone, from the stored metamer and natural stimulus (or
    cochleagrams); returns the new attributes.
    """
    res = results.read_result(path)
    datasets, attrs = dict(res[key]['datasets']), dict(res[key]['attrs'])
    layer, _ = results.layer_and_seed(key, attrs)
    from_stage = network.representation_stage if attrs.get('domain') == 'cochleagram' else None
    val = validation.validate(network, datasets['natural'][None], datasets['metamer'][None], layer,
                              null=null, from_stage=from_stage,
                              criterion=results._text(attrs.get('procedure', 'feather2019')))[0]
    new_attrs, new_datasets = _validation_record(network, val)
    attrs.update(new_attrs)
    datasets.update(new_datasets)
    results.write_part(path, res['_file'], key, datasets, attrs)
    return attrs


STATE_SUFFIX = '.state.h5'


def _state_dir(network_dir, layer):
    return os.path.join(network_dir, results.PART_DIR, '_state', results.layer_file_name(layer))


def _state_path(network_dir, layer, stems, seed=0):
    key = '+'.join(stems)
    if len(key) > 80:
        key = hashlib.sha1(key.encode()).hexdigest()
    return os.path.join(_state_dir(network_dir, layer), results.result_key(key, seed) + STATE_SUFFIX)


def _state_owner(path):
    """``(stems, seed)`` of the batch a state file belongs to; None when that cannot be told."""
    import json

    import h5py
    try:
        with h5py.File(path, 'r') as f:
            note = json.loads(f.attrs.get('annotations', '{}'))
    except (OSError, ValueError, RuntimeError):
        return None
    if 'stems' in note:
        return list(note['stems']), int(note.get('seed', 0))
    # States written before they were annotated: the name is the batch's stems (when short).
    name = os.path.basename(path)[:-len(STATE_SUFFIX)]
    key, _, seed = name.partition(results.SEED_MARK)
    if len(key) == 40 and '+' not in key:
        return None
    return key.split('+'), int(seed) if seed.isdigit() else 0


def _plan_batches(network_dir, layer, todo, done, stems, settings, log):
    """Batches (lists of input indices) for one layer, interrupted batches first.

    A state file of an interrupted batch whose inputs are all still to do is
    resumed with its own batch (so that a rerun with another ``--batch_size``
    continues it instead of starting over); one whose inputs are all done is
    removed. The rest is cut into batches of ``settings.batch_size``.
    """
    left = list(todo)
    batches = []
    for path in sorted(glob.glob(os.path.join(glob.escape(_state_dir(network_dir, layer)), '*' + STATE_SUFFIX))):
        owner = _state_owner(path)
        if owner is None or owner[1] != settings.seed:
            continue
        index = {stems[i]: i for i in left}
        if all(s in index for s in owner[0]):
            batch = [index[s] for s in owner[0]]
            if len(batch) != settings.batch_size:
                log('%s: resuming an interrupted batch of %d input(s) (%s) from %s; --batch_size=%d '
                    'applies to the others' % (layer, len(batch), ', '.join(owner[0]), path,
                                               settings.batch_size))
            batches.append(batch)
            left = [i for i in left if i not in batch]
        elif owner[0] and all(s in done for s in owner[0]):
            _remove(path)
    batches += [left[k:k + settings.batch_size] for k in range(0, len(left), settings.batch_size)]
    return batches


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:  # a concurrent run on the same folder removed it first
        pass


def check_writable(folders):
    """Refuse, before any synthesis, a folder the run could not write into.

    ``folders``: ``[(folder, flag)]``. A folder that does not exist yet is judged
    by its nearest existing parent (a plain file there is an error too).
    """
    import tempfile

    for folder, flag in dict.fromkeys(folders):
        existing = os.path.abspath(folder)
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise GenerationError('cannot create the folder %s: %s is a file, not a folder; move it '
                                  'away or choose another %s' % (folder, existing, flag))
        try:
            with tempfile.TemporaryFile(dir=existing):
                pass
        except OSError as exc:
            raise GenerationError('cannot write in the folder %s (%s); make it writable or choose '
                                  'another %s' % (existing, exc.strerror or exc, flag)) from None


class _Exporter:
    """Writes the listenable / viewable files beside the HDF5 results."""

    def __init__(self, network, network_dir):
        self.network = network
        self.dir = network_dir

    def stimulus(self, stem, suffix, x, domain):
        base = os.path.join(self.dir, '%s_%s' % (stem, results.layer_file_name(suffix)))
        if self.network.modality == 'image':
            from model_metamers import images
            images.save_png(base + '.png', x)
        elif domain == 'stimulus':
            from model_metamers import audio
            audio.write_wav(base + '.wav', x, sr=self.network.sample_rate)
        else:
            from model_metamers import plotting
            plotting.save_cochleagram_png(base + '.png', x)


def _tensorboard_writer(settings, stem):
    if not settings.tensorboard_dir:
        return None
    import tensorflow as tf
    return tf.summary.create_file_writer(os.path.join(settings.tensorboard_dir, settings.network, stem))


def _tensorboard_log(writer, network, layer, synth, k, val):
    """Loss curve, rho and the metamer of stimulus ``k`` of the batch ``synth`` made."""
    if writer is None:
        return
    import tensorflow as tf
    metamer, domain = synth.metamer[k], synth.domain
    record = synth.record(k)
    last = record['iterations']
    with writer.as_default():
        for step, loss in zip(record['loss_steps'], record['loss']):
            tf.summary.scalar('loss/%s' % layer, float(loss), step=int(step))
        tf.summary.scalar('spearman/%s' % layer, val.spearman_matched, step=last)
        if domain == 'stimulus' and network.modality == 'audio':
            peak = max(float(np.max(np.abs(metamer))), 1e-9)
            tf.summary.audio('metamer/%s' % layer, (metamer / peak)[None, :, None],
                             network.sample_rate, step=last)
        elif network.modality == 'image':
            tf.summary.image('metamer/%s' % layer, np.clip(metamer, 0, 1)[None], step=last)
        elif np.ndim(metamer) == 3:  # a cochleagram [frequency, time, 1]: low frequencies at the bottom
            low, high = float(np.min(metamer)), float(np.max(metamer))
            picture = (metamer[::-1] - low) / max(high - low, 1e-12)
            tf.summary.image('metamer/%s' % layer, picture[None], step=last)
    writer.flush()


def generate(settings, network=None, log=None):
    """Run generation; returns one summary dict per (input, layer) done or found.

    A part file of another layer (or seed) that cannot be read is left out of its
    input's result with a warning and gets a row with status ``'unreadable part'``.
    Raises the loaders' / registry's / checkpoints' errors with their messages
    (the CLI prints them as one line), and :class:`~model_metamers.fileio.DiskFullError`.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    check_settings(settings)
    weights = resolve_weights(settings.network, settings.weights, log)
    strategy = None
    if network is None:
        strategy = _multi_gpu_strategy(settings.batch_size)
        if strategy is not None:
            with strategy.scope():
                network = _networks.build(settings.network, weights=weights, seed=0)
        else:
            network = _networks.build(settings.network, weights=weights, seed=0)
        if network.info.get('weights_report'):
            log(network.info['weights_report'])
    layers, seen = [], set()
    for layer in (settings.layers or network.metamer_layers):
        canonical = network.resolve(layer)
        if canonical not in seen:  # a layer named twice (or by an alias) is done once
            seen.add(canonical)
            layers.append(layer)
    inputs = expand_inputs(settings.inputs, network.modality) if settings.inputs else default_inputs(network)
    stems = stems_of(inputs)
    null = None
    null_path = resolve_null(settings.network, settings.null_distribution, log)
    if null_path:
        try:
            null = validation.load_null(null_path, measures=settings.procedure == 'feather2023')
        except (OSError, ValueError) as exc:
            if settings.null_distribution != 'auto' or settings.procedure != 'feather2023':
                raise GenerationError(str(exc)) from None
            # Found by 'auto' (e.g. the release's Spearman-only pickle): unusable for the 2023 criterion.
            log('not using %s: %s; metamers are validated by the predicted class only'
                % (null_path, str(exc).split(';')[0]))
            null_path = None
    weights_id = weights_fingerprint(weights)
    if null is not None:
        from model_metamers.null_distribution import NullMismatchError, check_matches
        missing = [layer for layer in layers
                   if layer not in null and network.resolve(layer) not in null]
        try:
            check_matches(published_nulls.null_record(null_path), network.name, weights_id, source=null_path)
            if missing:
                raise GenerationError('null distribution %s has no layer(s) %s'
                                      % (null_path, ', '.join(missing)))
        except (NullMismatchError, GenerationError) as exc:
            if settings.null_distribution != 'auto':
                raise GenerationError(str(exc)) from None
            # Found by 'auto', not asked for: other weights (or layers) than the null's are no error,
            # they only cannot be validated against it.
            log('not using %s: %s; metamers are validated by the predicted class only'
                % (null_path, str(exc).split(';')[0]))
            null = null_path = None
    jobs = plan_jobs(len(inputs), layers, settings.num_shards, settings.shard_index)
    seed = settings.seed
    if not jobs:
        log('shard %d of %d has no jobs (%d input(s) x %d layer(s) = %d jobs in all); nothing to do'
            % (settings.shard_index, settings.num_shards, len(inputs), len(layers), len(inputs) * len(layers)))
    # Every input of this shard is read before the first synthesis, so that a bad file
    # stops the run before hours of work on the others (and before anything is written).
    stimuli = {i: load_stimulus(network, inputs[i]) for i in sorted({i for i, _ in jobs})}
    network_dir = os.path.join(settings.output_dir, network.name)
    exporter = _Exporter(network, network_dir)
    lr = settings.learning_rate
    if lr is None:
        lr = network.default_learning_rate if settings.procedure == 'feather2019' else 1.0
    if null is None and jobs and settings.null_distribution != 'auto':
        # Turned off on purpose ('none'); with 'auto' and none found, resolve_null has said so.
        log('warning: ' + NO_NULL_WARNING)

    # Parts that older code wrote for another seed under the seed-0 name (once per folder).
    for i, layer in jobs:
        try:
            moved = results.migrate_legacy_part(network_dir, stems[i], layer)
        except OSError:  # a read-only folder: left as it is
            moved = None
        if moved:
            log('%s / %s: moved the part of another seed to %s' % (stems[i], layer, moved))

    # What is done, what needs validating again, what is to be made: reads only.
    by_layer = {}
    for i, layer in jobs:
        by_layer.setdefault(layer, []).append(i)
    finished, revalidate, todo = {}, [], {}
    for layer in layers:
        threshold = validation.null_threshold(null, network, layer) if by_layer.get(layer) else None
        for i in by_layer.get(layer, []):
            path = results.part_path(network_dir, stems[i], layer, seed)
            reason = results.check_part(path) if os.path.exists(path) else None
            attrs = None if reason else _finished_part(path, layer, settings, weights, weights_id, lr)
            if reason:
                log('%s / %s: part file %s is unreadable (%s); making it again' % (
                    stems[i], layer, path, reason))
            if attrs is None:
                todo.setdefault(layer, []).append(i)
                continue
            finished[(i, layer)] = attrs
            if not np.array_equal(float(attrs.get('null_max', np.nan)), threshold, equal_nan=True):
                revalidate.append((i, layer))
    touched = sorted({stems[i] for i, _ in jobs})

    # Before the first iteration: every folder this run will write must take files.
    folders = []
    if todo or revalidate:
        folders.append((network_dir, '--output_dir'))
        folders += [(os.path.dirname(results.part_path(network_dir, stems[i], layer)), '--output_dir')
                    for i, layer in revalidate]
        for layer, indices in todo.items():
            folders.append((_state_dir(network_dir, layer), '--output_dir'))
            folders += [(os.path.join(network_dir, results.PART_DIR, stems[i]), '--output_dir')
                        for i in indices]
        if settings.tensorboard_dir and todo:
            folders.append((settings.tensorboard_dir, '--tensorboard_dir'))
    elif settings.num_shards == 1 and any(results.needs_assembly(network_dir, s) for s in touched):
        folders.append((network_dir, '--output_dir'))
    check_writable(folders)
    if folders:
        stale = sum(len(remove_stale_temp_files(folder)) for folder, _ in dict.fromkeys(
            folders + [(network_dir, '')] + [(os.path.join(network_dir, results.PART_DIR, s), '')
                                            for s in touched]))
        if stale:
            log('removed %d temporary file(s) an interrupted run left behind' % stale)
    if settings.num_shards > 1 and todo:
        plan = [(stems[i], results.result_key(layer, seed), k) for k in range(settings.num_shards)
                for i, layer in plan_jobs(len(inputs), layers, settings.num_shards, k)]
        results.write_plan(network_dir, plan, settings.num_shards)

    rows = []
    assembled = set()
    for layer_no, layer in enumerate(layers, 1):
        for i in by_layer.get(layer, []):
            if (i, layer) not in finished:
                continue
            attrs = finished[(i, layer)]
            note = ''
            if attrs.get('log_every', settings.log_every) != settings.log_every:
                note = 'done before with --log_every=%d' % attrs['log_every']
            if (i, layer) in revalidate:
                path = results.part_path(network_dir, stems[i], layer, seed)
                attrs = _revalidate_part(path, results.result_key(layer, seed), network, null)
                log('%s / %s: already done; validated again %s' % (
                    stems[i], layer, 'with %s' % null_path if null is not None
                    else 'without a null distribution'))
            else:
                log('%s / %s: already done, skipped%s' % (stems[i], layer, ' (%s)' % note if note else ''))
            rows.append(_row(stems[i], layer, attrs, skipped=True, note=note))
        done = {stems[i] for i in by_layer.get(layer, []) if (i, layer) in finished}
        batches = (_plan_batches(network_dir, layer, todo[layer], done, stems, settings, log)
                   if layer in todo else [])
        for batch in batches:
            batch_stems = [stems[i] for i in batch]
            natural = np.stack([stimuli[i] for i in batch])
            use_strategy = strategy if strategy and len(batch) % strategy.num_replicas_in_sync == 0 else None
            synth = MetamerSynthesizer(network, natural, layer, procedure=settings.procedure,
                                       learning_rate=lr, seed=seed, domain=settings.domain,
                                       log_every=settings.log_every, jit_compile=settings.jit_compile,
                                       strategy=use_strategy, modified_relu=settings.modified_relu,
                                       stage_iterations=settings.stage_iterations,
                                       stages=settings.stages)
            synth.annotations = {'stems': batch_stems, 'seed': seed, 'layer': layer}
            state = _state_path(network_dir, layer, batch_stems, seed)
            label = '[%d/%d] %s %s' % (layer_no, len(layers), layer,
                                       batch_stems[0] if len(batch) == 1 else '%d inputs' % len(batch))
            synth.synthesize(settings.iterations, checkpoint_path=state,
                             checkpoint_every=settings.checkpoint_every,
                             stop_threshold=settings.stop_threshold, stop_window=settings.stop_window,
                             progress=ProgressLine(label) if settings.progress else None)
            for k, status in enumerate(synth.stimulus_status):
                if status == 'diverged':
                    log('%s: %s: %s' % (label, batch_stems[k], synth.stimulus_message[k]))
            from_stage = synth._from_stage
            vals = validation.validate(network, synth.natural_representation, synth.metamer, layer,
                                       null=null, from_stage=from_stage, criterion=settings.procedure)
            key = results.result_key(layer, seed)
            for k, i in enumerate(batch):
                val = vals[k]
                # Its own history: it may have stopped (converged, diverged) before its batch mates.
                record = synth.record(k)
                datasets = {name: record[name] for name in (
                    'metamer', 'loss', 'loss_steps', 'grad_norm', 'change_norm', 'learning_rates',
                    'snapshots', 'snapshot_steps')}
                datasets['natural'] = synth.natural_representation[k]
                val_attrs, val_datasets = _validation_record(network, val)
                datasets.update(val_datasets)
                if synth.domain == 'cochleagram':
                    datasets['natural_waveform'] = natural[k]
                attrs = dict(val_attrs, status=record['status'], message=record['message'],
                             final_loss=float(record['loss'][-1]), elapsed_s=record['elapsed_s'],
                             **_settings_attrs(settings, synth, weights, weights_id))
                attrs['seed'] = synth.seeds[k]
                attrs['iterations'] = record['iterations']
                attrs['layer'] = layer
                # HDF5 lists groups alphabetically; readers sort layers by this.
                attrs['layer_index'] = (network.metamer_layers.index(layer)
                                        if layer in network.metamer_layers else len(network.metamer_layers))
                # The part file marks the job done, so it is written last: a run killed before it
                # redoes the job (from its state file) and its exports with it.
                exporter.stimulus(stems[i], key, synth.metamer[k], synth.domain)
                if not os.path.exists(os.path.join(network_dir, '%s_natural.%s' % (
                        stems[i], 'png' if network.modality == 'image' or synth.domain != 'stimulus'
                        else 'wav'))):
                    exporter.stimulus(stems[i], 'natural', synth.natural_representation[k], synth.domain)
                results.write_part(results.part_path(network_dir, stems[i], layer, seed),
                                   results.file_attrs(network, inputs[i], weights), key, datasets, attrs)
                _tensorboard_log(_tensorboard_writer(settings, stems[i]), network, layer, synth, k, val)
                rows.append(_row(stems[i], layer, attrs))
            _remove(state)
            if settings.num_shards == 1:
                for i in batch:
                    rows += _assemble(network_dir, stems[i], log)
                    assembled.add(stems[i])
    if settings.num_shards == 1:
        # Inputs whose jobs were all done before: their file may lack a part that a killed run
        # wrote just before assembling (or may have been deleted); it is rebuilt when out of date.
        for stem in sorted(set(touched) - assembled):
            rows += _assemble(network_dir, stem, log)
    if settings.num_shards == 1 and settings.figures:
        for stem in touched:
            path = results.result_path(network_dir, stem)
            figure = os.path.join(network_dir, stem + '_figure.png')
            if os.path.exists(path) and not (os.path.exists(figure)
                                             and os.path.getmtime(figure) >= os.path.getmtime(path)):
                _figure(network, path, figure, log)
    return rows


def _assemble(network_dir, stem, log):
    """Assemble ``<stem>.h5``; unreadable parts are left out, said, and returned as rows."""
    bad, kept = [], []
    results.assemble(network_dir, stem, bad=bad, kept=kept)
    rows = []
    for path, reason in bad:
        key = os.path.basename(path)[:-len('.h5')].replace('__', '/')
        layer, _, seed = key.partition(results.SEED_MARK)
        log('warning: part file %s is unreadable (%s); %s %s; delete that part file and run its layer '
            '(--layer=%s%s) again' % (path, reason, 'kept the earlier copy in' if key in kept
                                      else 'left out of', results.result_path(network_dir, stem),
                                      layer, ' --seed=%s' % seed if seed else ''))
        rows.append({'input': stem, 'layer': layer, 'seed': int(seed or 0),
                     'loss': np.nan, 'spearman': np.nan, 'same_class': '', 'passed': False,
                     'class_only': False, 'status': 'unreadable part', 'natural_class': '',
                     'metamer_class': '', 'skipped': False, 'note': ''})
    return rows


def _class_name(network, index):
    if index is None:
        return 'none'
    if isinstance(index, (int, np.integer)) and 0 <= index < len(network.class_names):
        return network.class_names[index]
    return str(index)


def _row(stem, layer, attrs, skipped=False, note=''):
    return {'input': stem, 'layer': layer, 'seed': int(attrs.get('seed', 0)),
            'loss': float(attrs.get('final_loss', np.nan)),
            'spearman': float(attrs['spearman_matched']), 'same_class': attrs['same_class'],
            'passed': bool(attrs['passed']), 'null_max': float(attrs.get('null_max', np.nan)),
            # Without a null distribution only the class criterion was checked.
            'class_only': bool(np.isnan(float(attrs.get('null_max', np.nan)))),
            'status': str(attrs.get('status', '')),
            'natural_class': str(attrs.get('natural_class_name', '')),
            'metamer_class': str(attrs.get('metamer_class_name', '')), 'skipped': skipped,
            'note': note,
            # The 2023 criterion's other measures (nan for feather2019 results).
            'pearson': float(attrs.get('pearson_matched', np.nan)),
            'null_max_pearson': float(attrs.get('null_max_pearson', np.nan)),
            'snr_db': float(attrs.get('snr_db_matched', np.nan)),
            'null_max_snr_db': float(attrs.get('null_max_snr_db', np.nan))}


def _figure(network, result_path, out_path, log):
    try:
        from model_metamers import plotting
    except ImportError:
        return
    try:
        plotting.result_figure(network, result_path, out_path)
    except ImportError:
        log('matplotlib is not installed: no figure (pip install model_metamers[plots])')


def _passed_text(row):
    if row['passed'] and row.get('class_only'):
        return 'class only'
    return str(row['passed'])


def _status_text(row):
    if not row['skipped']:
        return row['status']
    return row['status'] + ' (skipped: %s)' % (row.get('note') or 'done before')


def summary_table(rows):
    """The end-of-run table: input, layer (and seed), final loss, Spearman at layer, the null's
    maximum there, same class, passed.

    ``passed`` reads ``class only`` when no null distribution was given (only the
    class criterion could be checked). Rows validated by the 2023 criterion add
    Pearson r and the 2023 dB SNR, each with its null maximum.
    """
    extra = any(not np.isnan(r.get('pearson', np.nan)) for r in rows)

    def measures(r):
        if not extra:
            return ()
        return tuple(_number_text(r.get(k, np.nan), fmt) for k, fmt in (
            ('pearson', '%.4f'), ('null_max_pearson', '%.4f'), ('snr_db', '%.2f'),
            ('null_max_snr_db', '%.2f')))

    return table([(r['input'], results.result_key(r['layer'], r.get('seed', 0)), '%.4g' % r['loss'],
                   '%.4f' % r['spearman'], _null_max_text(r)) + measures(r)
                  + (str(r['same_class']), _passed_text(r), _status_text(r))
                  for r in rows],
                 ['input', 'layer', 'final_loss', 'spearman', 'null_max']
                 + (['pearson', 'null_max_r', 'snr_db_2023', 'null_max_snr'] if extra else [])
                 + ['same_class', 'passed', 'status'])


def _number_text(value, fmt):
    return '-' if np.isnan(value) else fmt % value


def _null_max_text(row):
    """The null's maximum a metamer's rho must exceed; '-' without a null distribution."""
    value = row.get('null_max', np.nan)
    return '-' if np.isnan(value) else '%.4f' % value


def _multi_gpu_strategy(batch_size):
    """A MirroredStrategy over all GPUs when more than one is visible and the batch splits."""
    import tensorflow as tf
    gpus = tf.config.list_logical_devices('GPU')
    if len(gpus) > 1 and batch_size % len(gpus) == 0:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return None
