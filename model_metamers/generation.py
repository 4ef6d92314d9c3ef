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

import contextlib
import dataclasses
import os
import sys

import numpy as np

from model_metamers import exports, published_nulls, result_records, results, resume, stimuli, validation
from model_metamers import networks as _networks
from model_metamers.errors import GenerationError
from model_metamers.fileio import remove_stale_temp_files
from model_metamers.progress import ProgressLine, table
from model_metamers.synthesis import MetamerSynthesizer, default_learning_rate
from model_metamers.weights import checkpoint_dir, resolve_weights, weights_fingerprint

# Moved to their own modules; still importable from here (tests, notebooks, older scripts).
from model_metamers.resume import state_path as _state_path  # noqa: E402,F401
from model_metamers.stimuli import (default_inputs, expand_inputs, input_extensions,  # noqa: F401
                                    load_stimulus, stems_of)


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
    # Issue 21: your own network (--network=path.keras or module:function); None = inferred.
    modality: str = None
    class_names: object = None
    sample_rate: int = None
    input_shape: tuple = None
    front_end: str = None

    def network_options(self):
        """The options of :func:`model_metamers.networks.load` for a user's own model."""
        return dict(modality=self.modality, class_names=self.class_names, sample_rate=self.sample_rate,
                    input_shape=self.input_shape, front_end=self.front_end)


def default_null_path(network_name):
    """``<checkpoint dir>/<network>.null.h5``: where ``null_distribution='auto'`` looks first."""
    return os.path.join(checkpoint_dir(), '%s.null.h5' % network_name)


def resolve_null(network_name, value, log=None, default=None):
    """The null-distribution file to validate with, or None.

    ``'auto'``: ``<checkpoint dir>/<network>.null.h5``, else the original
    release's pickle for the network found under the checkpoint folder (where
    ``python -m model_metamers.fetch`` unpacks it); ``None``/``''``/``'none'``:
    no null; anything else is a path. ``log`` gets one line saying which null
    is used, or that there is none and what that means for validation.
    ``default``: the one file ``'auto'`` looks for instead (a user's own model).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if value is None or str(value).lower() in ('', 'none'):
        return None
    if value != 'auto':
        return os.path.expanduser(str(value))
    candidates = ((default,) if default else
                  (default_null_path(network_name), published_nulls.find(network_name, checkpoint_dir())))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            log('null distribution: %s' % candidate)
            return candidate
    log('no null distribution for %s (%s%s): metamers are validated by the predicted class only, '
        'not by the paper\'s criterion' % (network_name, default or default_null_path(network_name),
                                           '' if default else ', or the release\'s pickle'))
    return None


def network_folder(settings):
    """``<output_dir>/<network name>``: where a run's results go (a user's model is named by its
    file or function, :func:`model_metamers.networks.custom.network_name`)."""
    from model_metamers.networks import custom
    name = custom.network_name(settings.network) if custom.is_spec(settings.network) else settings.network
    return os.path.join(settings.output_dir, name)


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


NO_NULL_WARNING = ("no --null_distribution: 'passed' checks only that the metamer is classified like "
                   "its natural input ('class only' in the table); the paper's criterion also needs "
                   "rho above a null distribution (python -m model_metamers.null_distribution)")


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


def generate(settings, network=None, log=None):
    """Run generation; returns one summary dict per (input, layer) done or found.

    A part file of another layer (or seed) that cannot be read is left out of its
    input's result with a warning and gets a row with status ``'unreadable part'``.
    Raises the loaders' / registry's / checkpoints' errors with their messages
    (the CLI prints them as one line), and :class:`~model_metamers.fileio.DiskFullError`.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    check_settings(settings)
    network, strategy, weights, weights_id = _network_and_weights(settings, network, log)
    layers = _unique_layers(network, settings.layers or network.metamer_layers)
    inputs = (stimuli.expand_inputs(settings.inputs, network.modality) if settings.inputs
              else stimuli.default_inputs(network))
    stems = stimuli.stems_of(inputs)
    null, null_path = _null_for(settings, network, layers, weights_id, log)
    jobs = plan_jobs(len(inputs), layers, settings.num_shards, settings.shard_index)
    if not jobs:
        log('shard %d of %d has no jobs (%d input(s) x %d layer(s) = %d jobs in all); nothing to do'
            % (settings.shard_index, settings.num_shards, len(inputs), len(layers), len(inputs) * len(layers)))
    # Every input of this shard is read before the first synthesis, so that a bad file
    # stops the run before hours of work on the others (and before anything is written).
    natural = {i: stimuli.load_stimulus(network, inputs[i]) for i in sorted({i for i, _ in jobs})}
    network_dir = os.path.join(settings.output_dir, network.name)
    lr = settings.learning_rate
    if lr is None:
        lr = default_learning_rate(network, settings.procedure)
    if null is None and jobs and settings.null_distribution != 'auto':
        # Turned off on purpose ('none'); with 'auto' and none found, resolve_null has said so.
        log('warning: ' + NO_NULL_WARNING)

    _migrate_legacy_parts(network_dir, stems, jobs, log)
    run = _Run(settings, network, network_dir, inputs, stems, weights, weights_id, null, null_path, lr,
               strategy, log)
    by_layer, finished, revalidate, todo = resume.classify_jobs(run, layers, jobs)
    touched = sorted({stems[i] for i, _ in jobs})
    _prepare_folders(run, layers, revalidate, todo, touched)

    rows = []
    assembled = set()
    for layer_no, layer in enumerate(layers, 1):
        rows += [_finished_row(run, i, layer, finished[(i, layer)], (i, layer) in revalidate)
                 for i in by_layer.get(layer, []) if (i, layer) in finished]
        done = {stems[i] for i in by_layer.get(layer, []) if (i, layer) in finished}
        batches = (resume.plan_batches(network_dir, layer, todo[layer], done, stems, settings, log)
                   if layer in todo else [])
        for batch in batches:
            label = '[%d/%d] %s %s' % (layer_no, len(layers), layer,
                                       stems[batch[0]] if len(batch) == 1 else '%d inputs' % len(batch))
            rows += _synthesize_batch(run, layer, batch, np.stack([natural[i] for i in batch]), label)
            if settings.num_shards == 1:
                for i in batch:
                    rows += _assemble(network_dir, stems[i], log)
                    assembled.add(stems[i])
    if settings.num_shards == 1:
        # Inputs whose jobs were all done before: their file may lack a part that a killed run
        # wrote just before assembling (or may have been deleted); it is rebuilt when out of date.
        for stem in sorted(set(touched) - assembled):
            rows += _assemble(network_dir, stem, log)
        if settings.figures:
            _figures(network, network_dir, touched, log)
    return rows


@dataclasses.dataclass
class _Run:
    """What every step of one :func:`generate` call shares (resolved once, read only)."""

    settings: GenerationSettings
    network: object
    network_dir: str
    inputs: list
    stems: list
    weights: object
    weights_id: str
    null: object
    null_path: str
    learning_rate: float
    strategy: object
    log: object


def _network_and_weights(settings, network, log):
    """``(network, strategy, weights, weights SHA-1)``: the network (built under a multi-GPU
    strategy when there is one, unless given) and what results record of its weights."""
    if network is not None:  # from the API: a built network, e.g. MetamerNetwork.from_keras(model)
        from model_metamers.networks import custom
        if custom.is_own(network):
            return network, None, network.info.get('model_spec', network.name), custom.fingerprint(network)
        weights = resolve_weights(settings.network, settings.weights, log)
        return network, None, weights, weights_fingerprint(weights)
    strategy = _multi_gpu_strategy(settings.batch_size)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        network, weights, weights_id = _networks.load(settings.network, settings.weights, log,
                                                      **settings.network_options())
    if network.info.get('weights_report'):
        log(network.info['weights_report'])
    return network, strategy, weights, weights_id


def _unique_layers(network, requested):
    """``requested`` without repeats: a layer named twice (or by an alias) is done once."""
    layers, seen = [], set()
    for layer in requested:
        canonical = network.resolve(layer)
        if canonical not in seen:
            seen.add(canonical)
            layers.append(layer)
    return layers


def _null_for(settings, network, layers, weights_id, log):
    """``(null, path)``: the null distribution the run validates with, checked against the
    network, its weights and the layers; ``(None, None)`` without one.

    A null asked for by name that does not fit is an error; one found by ``'auto'``
    that does not fit is not used, and that is said once.
    """
    from model_metamers.networks import custom
    if custom.is_own(network):  # your own model: its null lies beside it
        null_path = resolve_null(network.name, settings.null_distribution, log,
                                 default=custom.default_null_path(network))
    else:
        null_path = resolve_null(settings.network, settings.null_distribution, log)
    if not null_path:
        return None, null_path
    try:
        null = validation.load_null(null_path, measures=settings.procedure == 'feather2023')
    except (OSError, ValueError) as exc:
        if settings.null_distribution != 'auto' or settings.procedure != 'feather2023':
            raise GenerationError(str(exc)) from None
        # Found by 'auto' (e.g. the release's Spearman-only pickle): unusable for the 2023 criterion.
        log('not using %s: %s; metamers are validated by the predicted class only'
            % (null_path, str(exc).split(';')[0]))
        return None, None
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
        return None, None
    return null, null_path


def _migrate_legacy_parts(network_dir, stems, jobs, log):
    """Move parts that older code wrote for another seed under the seed-0 name (once per folder)."""
    for i, layer in jobs:
        try:
            moved = results.migrate_legacy_part(network_dir, stems[i], layer)
        except OSError:  # a read-only folder: left as it is
            moved = None
        if moved:
            log('%s / %s: moved the part of another seed to %s' % (stems[i], layer, moved))


def _prepare_folders(run, layers, revalidate, todo, touched):
    """Before the first iteration: every folder this run will write must take files.

    Then remove the temporary files an interrupted run left there, and (sharded
    runs) record the whole job list for ``--merge`` to check.
    """
    settings, network_dir, stems = run.settings, run.network_dir, run.stems
    folders = []
    if todo or revalidate:
        folders.append((network_dir, '--output_dir'))
        folders += [(os.path.dirname(results.part_path(network_dir, stems[i], layer)), '--output_dir')
                    for i, layer in revalidate]
        for layer, indices in todo.items():
            folders.append((resume.state_dir(network_dir, layer), '--output_dir'))
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
            run.log('removed %d temporary file(s) an interrupted run left behind' % stale)
    if settings.num_shards > 1 and todo:
        plan = [(stems[i], results.result_key(layer, settings.seed), k) for k in range(settings.num_shards)
                for i, layer in plan_jobs(len(run.inputs), layers, settings.num_shards, k)]
        results.write_plan(network_dir, plan, settings.num_shards)


def _finished_row(run, i, layer, attrs, revalidate):
    """The row of a job done before (validated again first when the null distribution changed)."""
    settings, stem = run.settings, run.stems[i]
    note = ''
    if attrs.get('log_every', settings.log_every) != settings.log_every:
        note = 'done before with --log_every=%d' % attrs['log_every']
    if revalidate:
        path = results.part_path(run.network_dir, stem, layer, settings.seed)
        attrs = result_records.revalidate_part(path, results.result_key(layer, settings.seed),
                                               run.network, run.null)
        run.log('%s / %s: already done; validated again %s' % (
            stem, layer, 'with %s' % run.null_path if run.null is not None
            else 'without a null distribution'))
    else:
        run.log('%s / %s: already done, skipped%s' % (stem, layer, ' (%s)' % note if note else ''))
    return _row(stem, layer, attrs, skipped=True, note=note)


def _synthesize_batch(run, layer, batch, natural, label):
    """Synthesise, validate and write the metamers of one batch of inputs; their rows.

    ``natural``: the batch's stimuli, ``[len(batch)] + input_shape``.
    """
    settings, network, network_dir, seed = run.settings, run.network, run.network_dir, run.settings.seed
    batch_stems = [run.stems[i] for i in batch]
    strategy = run.strategy
    use_strategy = strategy if strategy and len(batch) % strategy.num_replicas_in_sync == 0 else None
    synth = MetamerSynthesizer(network, natural, layer, procedure=settings.procedure,
                               learning_rate=run.learning_rate, seed=seed, domain=settings.domain,
                               log_every=settings.log_every, jit_compile=settings.jit_compile,
                               strategy=use_strategy, modified_relu=settings.modified_relu,
                               stage_iterations=settings.stage_iterations, stages=settings.stages)
    synth.annotations = {'stems': batch_stems, 'seed': seed, 'layer': layer}
    state = resume.state_path(network_dir, layer, batch_stems, seed)
    synth.synthesize(settings.iterations, checkpoint_path=state,
                     checkpoint_every=settings.checkpoint_every,
                     stop_threshold=settings.stop_threshold, stop_window=settings.stop_window,
                     progress=ProgressLine(label) if settings.progress else None)
    for k, status in enumerate(synth.stimulus_status):
        if status == 'diverged':
            run.log('%s: %s: %s' % (label, batch_stems[k], synth.stimulus_message[k]))
    vals = validation.validate(network, synth.natural_representation, synth.metamer, layer,
                               null=run.null, from_stage=synth.from_stage, criterion=settings.procedure)
    key = results.result_key(layer, seed)
    exporter = exports.Exporter(network, network_dir)
    rows = []
    for k, i in enumerate(batch):
        datasets, attrs = result_records.job_record(network, layer, synth, k, natural, vals[k],
                                                    settings, run.weights, run.weights_id)
        # The part file marks the job done, so it is written last: a run killed before it
        # redoes the job (from its state file) and its exports with it.
        exporter.stimulus(run.stems[i], key, synth.metamer[k], synth.domain)
        if not os.path.exists(os.path.join(network_dir, '%s_natural.%s' % (
                run.stems[i], 'png' if network.modality == 'image' or synth.domain != 'stimulus'
                else 'wav'))):
            exporter.stimulus(run.stems[i], 'natural', synth.natural_representation[k], synth.domain)
        results.write_part(results.part_path(network_dir, run.stems[i], layer, seed),
                           results.file_attrs(network, run.inputs[i], run.weights), key, datasets, attrs)
        exports.tensorboard_log(exports.tensorboard_writer(settings, network.name, run.stems[i]), network, layer,
                                synth, k, vals[k])
        rows.append(_row(run.stems[i], layer, attrs))
    resume.remove_if_there(state)
    return rows


def _figures(network, network_dir, stems, log):
    """A figure per input whose result file is newer than its figure."""
    for stem in stems:
        path = results.result_path(network_dir, stem)
        figure = os.path.join(network_dir, stem + '_figure.png')
        if os.path.exists(path) and not (os.path.exists(figure)
                                         and os.path.getmtime(figure) >= os.path.getmtime(path)):
            _figure(network, path, figure, log)


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
