"""Metamer synthesis: one object holding the target, the model, the state and the history.

Typical use::

    net = model_metamers.networks.build('word_reduced_aliasing', weights='random')
    natural = model_metamers.audio.load_audio(path)
    synth = MetamerSynthesizer(net, natural, 'conv_2')
    synth.synthesize(iterations=15000)
    synth.metamer, synth.history['loss'], synth.save('run.h5')

A batch of natural stimuli is optimised together; every stimulus gets the
update it would get alone (the loss is a sum of per-stimulus losses, and the
optimiser is elementwise), and stops alone: a stimulus whose loss converges
(``stop_threshold``) or becomes non-finite is frozen while the others go on.
The arithmetic is the same up to kernel round-off, which does depend on the
batch size on CPUs (oneDNN and Eigen pick their blocking by batch size; see
BUILD_NOTES.md, "Batch vs single").
"""

import hashlib
import json
import math
import os
import time
import warnings

import h5py
import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.fileio import write_h5
from model_metamers import __version__, interrupts
from model_metamers.synthesis import noise as _noise
from model_metamers.synthesis.procedures import PROCEDURES, default_learning_rate, make_procedure

DOMAINS = ('stimulus', 'cochleagram')
STATE_FORMAT = 'model_metamers.synthesis_state.v1'
_LATER_KEYS = ('initial_noise', 'stages')

# Traced update / evaluation functions, shared by synthesizers that would trace
# the same graph (same network, layer, domain and procedure): a run over many
# inputs traces once per layer, not once per input.
_FUNCTIONS = {}


class SynthesisError(UserError, ValueError):
    """Bad synthesis arguments, or a state file that does not belong to this run."""


def _fingerprint(array):
    return hashlib.sha1(np.ascontiguousarray(array, np.float32).tobytes()).hexdigest()


class MetamerSynthesizer:
    """Synthesise metamers of one network layer for a batch of natural stimuli.

    Args:
      network: a :class:`~model_metamers.networks.MetamerNetwork`.
      natural: one stimulus (``network.input_shape``) or a batch
        (``[batch] + input_shape``), float32: waveforms at the network's rate,
        images in [0, 1].
      layer: the stage to match (paper names; aliases accepted).
      procedure: ``'feather2019'`` (default, the paper) or ``'feather2023'``.
      learning_rate: Adam learning rate (2019) or initial step size (2023);
        default: the network's (0.001, VGGish 0.01, DeepSpeech 0.0001) or 1.0
        for the 2023 procedure.
      seed: int, or one int per stimulus: seeds the initial noise, each
        procedure's own (:func:`~model_metamers.synthesis.noise.initial_noise`):
        2019 pink noise for audio and U[0.5, 0.6) for images; 2023 N(0, 1) x 1e-7
        for audio and N(0.5, 0.05^2) clamped to [0, 1] for images. The same seed
        gives the same noise for every layer, as in the original.
      domain: ``'stimulus'`` (optimise the waveform / image) or
        ``'cochleagram'`` (audio networks: optimise the cochleagram itself,
        Table S6); the initial cochleagram is that of the initial noise.
      modified_relu: use the gradient-1 ReLU at the matched layer when it is a
        ReLU output (the paper's choice; the 2023 code made metamers both ways).
      stage_iterations, stages: the 2023 schedule (``feather2023`` only): the
        step size is halved after every ``stage_iterations`` (3000) updates,
        ``stages`` (8) times; the default run length is their product.
      log_every: iterations between logged losses and snapshots (1000).
      jit_compile: compile the update loop with XLA.
      initial: optional explicit starting point (same shape as the optimised
        variable) instead of the seeded noise.
      strategy: optional ``tf.distribute`` strategy; the batch is split across
        replicas (it must divide evenly). Build the network under
        ``strategy.scope()`` so its weights are mirrored.
    """

    def __init__(self, network, natural, layer, procedure='feather2019', learning_rate=None,
                 seed=0, domain='stimulus', modified_relu=True, log_every=1000,
                 jit_compile=False, initial=None, strategy=None, stage_iterations=None, stages=None):
        if procedure not in PROCEDURES:
            raise SynthesisError('unknown procedure %r; choose one of %s'
                                 % (procedure, ', '.join(PROCEDURES)))
        if domain not in DOMAINS:
            raise SynthesisError('unknown domain %r; choose one of %s' % (domain, ', '.join(DOMAINS)))
        if domain == 'cochleagram' and not network.representation_stage:
            raise SynthesisError('network %s has no cochleagram stage; cochleagram-domain metamers '
                                 'need an audio network' % network.name)
        self.network = network
        self.layer = network.resolve(layer)
        self.layer_name = layer
        self.domain = domain
        self.modified_relu = bool(modified_relu)
        self.log_every = int(log_every) if log_every else 0
        self.jit_compile = bool(jit_compile)
        self.strategy = strategy

        natural = np.asarray(natural, np.float32)
        if natural.shape == tuple(network.input_shape):
            natural = natural[None]
        if natural.shape[1:] != tuple(network.input_shape):
            raise SynthesisError('natural stimuli for %s must have shape %s or [batch] + that, got %s'
                                 % (network.name, tuple(network.input_shape), natural.shape))
        if not np.all(np.isfinite(natural)):
            raise SynthesisError('the natural stimulus has NaN or infinite values')
        self.natural = natural
        self.batch_size = natural.shape[0]
        if strategy is not None and self.batch_size % strategy.num_replicas_in_sync:
            raise SynthesisError('batch of %d stimuli does not split evenly over %d replicas'
                                 % (self.batch_size, strategy.num_replicas_in_sync))

        seeds = np.atleast_1d(np.asarray(seed, np.int64))
        if seeds.size == 1:
            seeds = np.repeat(seeds, self.batch_size)
        if seeds.size != self.batch_size:
            raise SynthesisError('give one seed or one per stimulus (%d), got %d'
                                 % (self.batch_size, seeds.size))
        self.seeds = [int(s) for s in seeds]
        bad = [s for s in self.seeds if not 0 <= s < 2 ** 32]
        if bad:
            # numpy's RandomState, which draws the original's noise, takes 32-bit unsigned seeds.
            raise SynthesisError('seed must be in 0 .. 2**32-1, got %d; pick another --seed' % bad[0])

        if learning_rate is None:
            learning_rate = default_learning_rate(network, procedure)
        if not (np.isfinite(learning_rate) and learning_rate > 0):
            raise SynthesisError('learning rate must be a positive number, got %r; pass e.g. '
                                 '--learning_rate=0.001, or leave it out for the network default'
                                 % (learning_rate,))
        try:
            self.procedure = make_procedure(procedure, learning_rate, network.modality, domain,
                                            stage_iterations, stages)
        except ValueError as exc:
            raise SynthesisError(str(exc)) from None
        self.learning_rate = float(learning_rate)

        # What is optimised and how its representation is computed.
        if domain == 'cochleagram':
            self._from_stage = network.representation_stage
            self.natural_representation = network.activations(
                natural, [self._from_stage])[self._from_stage].numpy()
        else:
            self._from_stage = None
            self.natural_representation = natural
        self._identity = (domain == 'cochleagram' and self.layer == network.resolve(self._from_stage))
        self._needed = network.stages_for_matching(self.layer, self.modified_relu)
        if not self._identity:
            network.check_differentiable(self.layer, self._from_stage)
            self._forward_model = network.submodel(self._needed, from_stage=self._from_stage)
        self.target = network.activations(natural, [self.layer])[self.layer].numpy()

        self.initial_noise = 'given'
        if initial is None:
            initial = self._initial_noise()
        initial = np.asarray(initial, np.float32)
        if initial.shape == self.natural_representation.shape[1:]:
            initial = np.repeat(initial[None], self.batch_size, axis=0)
        if initial.shape != self.natural_representation.shape:
            raise SynthesisError('initial must have shape %s, got %s'
                                 % (self.natural_representation.shape, initial.shape))
        self.initial = initial

        self._x = tf.constant(initial)
        self._state = self.procedure.initial_state(self._x)
        self.step = 0
        self.history = {'step': [], 'loss': [], 'grad_norm': [], 'change_norm': [],
                        'learning_rate': [], 'time_s': []}
        self.snapshots = []
        self.snapshot_steps = []
        self.status = 'initialised'
        self.message = ''
        # Per stimulus: still optimised?, the step it stopped at, its status and message.
        self.active = np.ones(self.batch_size, bool)
        self.stopped_at = [None] * self.batch_size
        self.stimulus_status = ['initialised'] * self.batch_size
        self.stimulus_message = [''] * self.batch_size
        self._last_good = (np.zeros(self.batch_size, np.int64), initial)
        self._prev_logged_x = initial
        self._elapsed = 0.0
        self.annotations = {}  # saved with the state (json), not part of the run's identity
        self._build_functions()

    # ------------------------------------------------------------------ setup
    def _initial_noise(self):
        net = self.network
        drawn = [_noise.initial_noise(self.procedure.initial_noise, net.modality, net.input_shape, s)
                 for s in self.seeds]
        stim = np.stack([x for x, _ in drawn])
        self.initial_noise = drawn[0][1]
        if self.domain == 'cochleagram':
            return net.activations(stim, [self._from_stage])[self._from_stage].numpy()
        return stim

    def _represent(self, x):
        """Matched tensor (modified ReLU where applicable) for optimised input ``x``."""
        if self._identity:
            return x
        outputs = self._forward_model(x, training=False)
        return self.network.matched_tensor(outputs, self.layer, self.modified_relu)

    def _function_key(self):
        return (id(self.network), self.layer, self.domain, self.modified_relu, self.jit_compile,
                json.dumps(self.procedure.config(), sort_keys=True), id(self.strategy))

    def _build_functions(self):
        key = self._function_key()
        cached = _FUNCTIONS.get(key)
        if cached is not None and cached[0] is self.network:
            _, self._chunk, self._evaluate, self._distributed_chunk = cached
            return
        procedure = self.procedure

        def objective_and_grad(x, target):
            with tf.GradientTape() as tape:
                tape.watch(x)
                total = procedure.objective(self._represent(x), target)
            return total, tape.gradient(total, x)

        def chunk(x, state, target, step, n):
            total = tf.constant(np.nan, tf.float32)
            for _ in tf.range(n):
                total, grad = objective_and_grad(x, target)
                x, state = procedure.apply(x, grad, state, step)
                step += 1
            return x, state, total

        def evaluate(x, target):
            with tf.GradientTape() as tape:
                tape.watch(x)
                rep = self._represent(x)
                total = procedure.objective(rep, target)
            grad = tape.gradient(total, x)
            per = procedure.loss_per_stimulus(rep, target)
            gnorm = tf.sqrt(tf.reduce_sum(tf.reshape(tf.square(grad), [tf.shape(grad)[0], -1]), 1))
            return per, gnorm

        self._chunk = tf.function(chunk, jit_compile=self.jit_compile, reduce_retracing=True)
        self._evaluate = tf.function(evaluate, reduce_retracing=True)
        self._distributed_chunk = None
        if self.strategy is not None:
            strategy = self.strategy

            @tf.function
            def distributed_chunk(x, state, target, step, n):
                return strategy.run(chunk, args=(x, state, target, step, n))

            self._distributed_chunk = distributed_chunk
        _FUNCTIONS[key] = (self.network, self._chunk, self._evaluate, self._distributed_chunk)

    # --------------------------------------------------------------- running
    def _run_chunk(self, n):
        step = tf.constant(self.step, tf.int64)
        n = tf.constant(n, tf.int64)
        target = tf.constant(self.target)
        if self.strategy is None:
            x, state, total = self._chunk(self._x, self._state, target, step, n)
        else:
            x, state, total = self._run_distributed(target, step, n)
        self._x, self._state = x, state
        return total

    def _run_distributed(self, target, step, n):
        strategy = self.strategy
        replicas = strategy.num_replicas_in_sync
        per = self.batch_size // replicas

        def split(value):
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: value[ctx.replica_id_in_sync_group * per:
                                  (ctx.replica_id_in_sync_group + 1) * per])

        batched = {k: v for k, v in self._state.items() if v.shape.rank and v.shape[0] == self.batch_size}
        shared = {k: v for k, v in self._state.items() if k not in batched}
        state_in = dict({k: split(v) for k, v in batched.items()}, **shared)
        x, state, total = self._distributed_chunk(split(self._x), state_in, split(target), step, n)

        def gather(value):
            parts = strategy.experimental_local_results(value)
            return tf.concat(parts, axis=0)

        state_out = {k: gather(state[k]) for k in batched}
        for k in shared:
            state_out[k] = strategy.experimental_local_results(state[k])[0]
        total = tf.add_n(list(strategy.experimental_local_results(total)))
        return gather(x), state_out, total

    def _log(self, since=None):
        """Log the current step; ``since``: ``perf_counter()`` when the updates that reached it began."""
        per, gnorm = self._evaluate(self._x, tf.constant(self.target))
        x = self._x.numpy()  # waits for those updates
        # The time logged at a step includes the updates that reached it (not yet in _elapsed).
        elapsed = self._elapsed + (time.perf_counter() - since if since is not None else 0.0)
        loss = per.numpy()
        change = np.sqrt(np.sum((x - self._prev_logged_x).reshape(self.batch_size, -1).astype(np.float64) ** 2,
                                axis=1))
        self._prev_logged_x = x
        self.history['step'].append(self.step)
        self.history['loss'].append(loss)
        self.history['grad_norm'].append(gnorm.numpy())
        self.history['change_norm'].append(change)
        self.history['learning_rate'].append(float(self.procedure.step_size(self.step).numpy()))
        self.history['time_s'].append(elapsed)
        finite = np.isfinite(loss) & np.all(np.isfinite(x.reshape(self.batch_size, -1)), axis=1)
        good_steps, good_x = self._last_good
        where = finite.reshape((-1,) + (1,) * (x.ndim - 1))
        self._last_good = (np.where(finite, self.step, good_steps), np.where(where, x, good_x))
        return loss, finite

    def _freeze(self, before):
        """Put the stopped stimuli back to ``before`` (``(x, state)`` ahead of the chunk just run)."""
        x_old, state_old = before
        mask = tf.constant(self.active)

        def keep(new, old):
            if not new.shape.rank or new.shape[0] != self.batch_size:
                return new  # shared (beta powers): only the running stimuli use them
            return tf.where(tf.reshape(mask, [-1] + [1] * (new.shape.rank - 1)), new, old)

        self._x = keep(self._x, x_old)
        self._state = {k: keep(v, state_old[k]) for k, v in self._state.items()}

    def _stop_diverged(self, bad):
        """Freeze the stimuli ``bad`` (bool ``[batch]``) at their last finite snapshot."""
        good_steps, good_x = self._last_good
        x = self._x.numpy()
        x[bad] = good_x[bad]
        self._x = tf.constant(x)
        for k in np.flatnonzero(bad):
            self.active[k] = False
            self.stopped_at[k] = self.step
            self.stimulus_status[k] = 'diverged'
            self.stimulus_message[k] = ('loss became non-finite by iteration %d; kept the last finite '
                                        'snapshot (iteration %d); try a smaller learning rate'
                                        % (self.step, good_steps[k]))
            warnings.warn(self.stimulus_message[k], RuntimeWarning)

    def synthesize(self, iterations=None, checkpoint_path=None, checkpoint_every=None,
                   stop_threshold=None, stop_window=None, progress=None, progress_every=100):
        """Run the optimisation to ``iterations`` total updates.

        Args:
          iterations: total number of updates (default: the network's,
            15000 for the paper's networks; 24000 for the 2023 procedure). Calling again with a larger number continues.
          checkpoint_path: file for the run state; if it exists and belongs to
            this run, the run resumes from it, and it is rewritten every
            ``checkpoint_every`` iterations (default ``log_every``). A resumed
            run ends bit-identical to an uninterrupted one.
          stop_threshold, stop_window: optional convergence stop: a stimulus stops
            at a log point once its relative loss decrease over the last
            ``stop_window`` iterations is below ``stop_threshold``; the run ends
            when every stimulus has stopped (or at ``iterations``).
          progress: optional callable ``progress(step, iterations, mean_loss, it_per_s)``.
          progress_every: iterations between progress calls.

        Returns:
          The metamers, ``[batch] + shape`` float32 (also ``self.metamer``).
        """
        if iterations is None:
            # The network's default (1500 for the keyword-spotting models) for the
            # paper's procedure; the 2023 procedure has its own schedule length.
            iterations = (self.network.default_iterations if self.procedure.name == 'feather2019'
                          else self.procedure.default_iterations)  # stages x stage_iterations
        iterations = int(iterations)
        if iterations < 0:
            raise SynthesisError('iterations must be >= 0, got %d' % iterations)
        if checkpoint_path and os.path.exists(checkpoint_path):
            self._restore(checkpoint_path, iterations)
        if checkpoint_every is None:
            checkpoint_every = self.log_every or iterations
        if stop_window and self.log_every and stop_window % self.log_every:
            raise SynthesisError('stop_window (%d) must be a multiple of log_every (%d)'
                                 % (stop_window, self.log_every))
        self.status = 'running'
        self.stimulus_status = ['running' if a else st for a, st in zip(self.active, self.stimulus_status)]
        if not self.history['step']:
            self._log()
        boundaries = [b for b in (self.log_every, checkpoint_every if checkpoint_path else 0,
                                  progress_every if progress else 0) if b]
        while self.step < iterations and self.active.any():
            n = iterations - self.step
            for b in boundaries:
                n = min(n, b - self.step % b)
            t0 = time.perf_counter()
            before = None if self.active.all() else (self._x, self._state)
            interrupts.check()
            total = self._run_chunk(n)
            if before is not None:  # stopped stimuli stay as they stopped
                self._freeze(before)
            self.step += n
            at_log = (self.log_every and self.step % self.log_every == 0) or self.step == iterations
            if at_log:
                loss, finite = self._log(since=t0)
            self._elapsed += time.perf_counter() - t0
            if at_log and not np.all(finite[self.active]):
                self._stop_diverged(self.active & ~finite)
                if not self.active.any():
                    break
            if at_log and self.log_every and self.step % self.log_every == 0:
                self.snapshots.append(self._x.numpy())
                self.snapshot_steps.append(self.step)
            if progress:
                progress(self.step, iterations, float(total.numpy()) / self.batch_size,
                         n / max(time.perf_counter() - t0, 1e-9))
            if at_log and stop_threshold is not None:
                done = self.active & self._converged(stop_threshold, stop_window)
                for k in np.flatnonzero(done):
                    self.active[k] = False
                    self.stopped_at[k] = self.step
                    self.stimulus_status[k] = 'converged'
                    self.stimulus_message[k] = ('stopped at iteration %d: relative loss change below %g'
                                                % (self.step, stop_threshold))
            if checkpoint_path and (self.step % checkpoint_every == 0 or self.step == iterations
                                    or not self.active.all()):
                self.save(checkpoint_path)
        self.stimulus_status = ['finished' if st == 'running' else st for st in self.stimulus_status]
        statuses = set(self.stimulus_status)
        first = {st: self.stimulus_message[self.stimulus_status.index(st)] for st in statuses}
        if 'diverged' in statuses:
            self.status, self.message = 'diverged', first['diverged']
        elif statuses == {'converged'}:
            self.status, self.message = 'converged', self.stimulus_message[int(np.argmax(
                [s or 0 for s in self.stopped_at]))]
        else:
            self.status, self.message = 'finished', ''
        if self.snapshot_steps[-1:] != [self.step] and statuses != {'diverged'}:
            self.snapshots.append(self._x.numpy())
            self.snapshot_steps.append(self.step)
        return self.metamer

    def _converged(self, threshold, window):
        """Per stimulus (bool ``[batch]``): relative loss decrease over ``window`` below ``threshold``."""
        steps = self.history['step']
        window = window or self.log_every
        if not steps or steps[-1] - window < 0 or (steps[-1] - window) not in steps:
            return np.zeros(self.batch_size, bool)
        old = np.asarray(self.history['loss'][steps.index(steps[-1] - window)])
        new = np.asarray(self.history['loss'][-1])
        rel = (old - new) / np.maximum(np.abs(old), 1e-30)
        return np.asarray(rel < threshold)

    def record(self, k):
        """What stimulus ``k`` of the batch got, as if it had been run alone (up to round-off).

        Its history and snapshots end where it stopped (converged or diverged), so the
        record does not depend on when its batch mates stopped. Returns a dict with
        ``metamer``, ``loss``, ``loss_steps``, ``grad_norm``, ``change_norm``,
        ``learning_rates``, ``snapshots`` (``[n] + shape``), ``snapshot_steps``,
        ``iterations``, ``status``, ``message`` and ``elapsed_s``.
        """
        stop = self.stopped_at[k] if self.stopped_at[k] is not None else self.step
        steps = np.asarray(self.history['step'], np.int64)
        keep = steps <= stop
        snap_steps = np.asarray(self.snapshot_steps, np.int64)
        # A run that diverges keeps no snapshot of the step it diverged at.
        snap_keep = (snap_steps < stop) if self.stimulus_status[k] == 'diverged' else (snap_steps <= stop)
        shape = self._x.shape[1:]
        snapshots = (np.stack(self.snapshots)[snap_keep, k] if self.snapshots
                     else np.zeros((0,) + tuple(shape), np.float32))
        return {'metamer': self.metamer[k], 'loss': self.loss[keep, k], 'loss_steps': steps[keep],
                'grad_norm': np.asarray(self.history['grad_norm'])[keep, k],
                'change_norm': np.asarray(self.history['change_norm'])[keep, k],
                'learning_rates': np.asarray(self.history['learning_rate'])[keep],
                'snapshots': snapshots, 'snapshot_steps': snap_steps[snap_keep],
                'iterations': int(stop), 'status': self.stimulus_status[k],
                'message': self.stimulus_message[k],
                'elapsed_s': float(np.asarray(self.history['time_s'])[keep][-1])}

    # ------------------------------------------------------------- results
    @property
    def metamer(self):
        """Current synthesised stimuli (or cochleagrams), ``[batch] + shape`` float32."""
        return self._x.numpy()

    @property
    def loss(self):
        """Logged losses, ``[n_logged, batch]``."""
        return np.asarray(self.history['loss'], np.float64).reshape(-1, self.batch_size)

    # Read-only views of the run, plenoptic-Metamer style: callers need not know ``history``.
    @property
    def losses(self):
        """Logged losses, ``[n_logged, batch]`` (the same as :attr:`loss`)."""
        return self.loss

    @property
    def loss_steps(self):
        """The iteration of each logged value, ``[n_logged]`` int64."""
        return np.asarray(self.history['step'], np.int64)

    @property
    def gradient_norm(self):
        """L2 norm of each stimulus' gradient at the logged steps, ``[n_logged, batch]``."""
        return np.asarray(self.history['grad_norm'], np.float64).reshape(-1, self.batch_size)

    @property
    def change_norm(self):
        """L2 norm of each stimulus' change since the previous log, ``[n_logged, batch]``."""
        return np.asarray(self.history['change_norm'], np.float64).reshape(-1, self.batch_size)

    @property
    def learning_rates(self):
        """The step size at the logged steps, ``[n_logged]``."""
        return np.asarray(self.history['learning_rate'], np.float64)

    @property
    def from_stage(self):
        """The stage the optimised variable feeds (the cochleagram stage), or None for the stimulus."""
        return self._from_stage

    def config(self):
        """Everything that defines this run (saved with the state and the results)."""
        return dict(network=self.network.name, layer=self.layer, domain=self.domain,
                    modified_relu=self.modified_relu, seeds=self.seeds, log_every=self.log_every,
                    natural_sha1=_fingerprint(self.natural), initial_sha1=_fingerprint(self.initial),
                    initial_noise=self.initial_noise,
                    package_version=__version__, **self.procedure.config())

    # -------------------------------------------------------- save / resume
    def save(self, path):
        """Write the whole run state to HDF5 atomically; :meth:`load` / resume read it."""
        def writer(f):
            f.attrs['format'] = STATE_FORMAT
            # What the caller needs to find this state again (generation: the batch's inputs).
            f.attrs['annotations'] = json.dumps(self.annotations, sort_keys=True)
            f.attrs['config'] = json.dumps(self.config(), sort_keys=True)
            f.attrs['step'] = self.step
            f.attrs['status'] = self.status
            f.attrs['elapsed_s'] = self._elapsed
            f['natural'] = self.natural
            f['initial'] = self.initial
            f['x'] = self._x.numpy()
            f['prev_logged_x'] = self._prev_logged_x
            f['last_good_x'] = self._last_good[1]
            f.attrs['last_good_step'] = int(np.min(self._last_good[0]))
            f['last_good_steps'] = np.asarray(self._last_good[0], np.int64)
            f['active'] = self.active
            f['stopped_at'] = np.asarray([-1 if s is None else s for s in self.stopped_at], np.int64)
            f.attrs['stimulus_status'] = json.dumps(self.stimulus_status)
            f.attrs['stimulus_message'] = json.dumps(self.stimulus_message)
            state = f.create_group('optimizer')
            for k, v in self._state.items():
                state[k] = np.asarray(v)
            hist = f.create_group('history')
            for k, v in self.history.items():
                hist[k] = np.asarray(v)
            f['snapshot_steps'] = np.asarray(self.snapshot_steps, np.int64)
            f['snapshots'] = (np.stack(self.snapshots) if self.snapshots
                              else np.zeros((0,) + self._x.shape, np.float32))
        write_h5(path, writer)

    def _restore(self, path, iterations=None):
        try:
            f = h5py.File(path, 'r')
        except OSError as exc:
            raise SynthesisError('cannot read synthesis state %s (%s); delete it to start over'
                                 % (path, exc))
        with f:
            if f.attrs.get('format') != STATE_FORMAT:
                raise SynthesisError('%s is not a synthesis state file; delete it or choose '
                                     'another path' % path)
            saved = json.loads(f.attrs['config'])
            mine = json.loads(json.dumps(self.config(), sort_keys=True))
            # Keys added after a state was written (issue 20) are not held against it: the
            # initial noise is pinned by initial_sha1, the stage count by the learning-rate history.
            diff = sorted(k for k in set(saved) | set(mine)
                          if k != 'package_version' and saved.get(k) != mine.get(k)
                          and not (k in _LATER_KEYS and k not in saved))
            if diff:
                raise SynthesisError('state file %s belongs to a different run (differs in: %s); '
                                     'delete it or use another output folder' % (path, ', '.join(diff)))
            step = int(f.attrs['step'])
            if iterations is not None and step > iterations:
                # Resuming would return a metamer of more updates than were asked for.
                raise SynthesisError('state file %s is at iteration %d, past the %d iterations asked '
                                     'for; ask for %d or more to finish that run, or delete the file '
                                     'to start over' % (path, step, iterations, step))
            self.step = step
            self._elapsed = float(f.attrs['elapsed_s'])
            self._x = tf.constant(f['x'][()])
            self._prev_logged_x = f['prev_logged_x'][()]
            good_steps = (f['last_good_steps'][()] if 'last_good_steps' in f
                          else np.full(self.batch_size, int(f.attrs['last_good_step']), np.int64))
            self._last_good = (good_steps, f['last_good_x'][()])
            if 'active' in f:  # states written before stimuli stopped one by one run them all
                self.active = f['active'][()].astype(bool)
                self.stopped_at = [None if s < 0 else int(s) for s in f['stopped_at'][()]]
                self.stimulus_status = json.loads(f.attrs['stimulus_status'])
                self.stimulus_message = json.loads(f.attrs['stimulus_message'])
            self._state = {k: tf.constant(f['optimizer'][k][()]) for k in f['optimizer']}
            self.history = {k: [np.asarray(v) if np.ndim(v) else v.item() for v in f['history'][k][()]]
                            for k in f['history']}
            for k in ('step',):
                self.history[k] = [int(v) for v in self.history[k]]
            for k in ('learning_rate', 'time_s'):
                self.history[k] = [float(v) for v in self.history[k]]
            self.snapshot_steps = [int(s) for s in f['snapshot_steps'][()]]
            self.snapshots = list(f['snapshots'][()])
            self.status = str(f.attrs['status'])

    @classmethod
    def load(cls, path, network, **kwargs):
        """Rebuild a synthesizer from a state file written by :meth:`save` (continue with ``synthesize``)."""
        with h5py.File(path, 'r') as f:
            config = json.loads(f.attrs['config'])
            natural = f['natural'][()]
            initial = f['initial'][()]
        synth = cls(network, natural, config['layer'], procedure=config['procedure'],
                    learning_rate=config['learning_rate'], seed=config['seeds'],
                    domain=config['domain'], modified_relu=config['modified_relu'],
                    log_every=config['log_every'], initial=initial,
                    stage_iterations=config.get('block_length'), stages=config.get('stages'), **kwargs)
        synth.initial_noise = config.get('initial_noise', synth.initial_noise)
        synth._restore(path)
        return synth


def iterations_per_second(history):
    """Mean iterations per second over a finished history (for reports)."""
    if len(history['step']) < 2 or not history['time_s'][-1]:
        return math.nan
    return history['step'][-1] / history['time_s'][-1]
