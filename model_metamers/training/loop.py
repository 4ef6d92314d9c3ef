"""The training loop: any registered audio network, its tasks, early stopping, resume.

::

    from model_metamers.training.loop import TrainConfig, train
    summary = train(TrainConfig(network='kws_2d', data='data/spoken_words'))

Per epoch: one pass over the (shuffled, seeded by epoch) training clips with Adam,
then the validation metrics; the best weights (by the validation score, the
mean over tasks of accuracy / mean AUC) and the last weights are saved (see
:mod:`.checkpointing`). Training stops after ``epochs``, when every task with a
target reached it on validation (paper: 57 % word accuracy, 0.83 mean AUC), or
after ``patience`` epochs without a better validation score. At the end the
test split (if any) is evaluated with the best weights.

Front-end cache: without augmentation a clip's cochleagram is the same every
epoch and the front end has no trainable weights, so (``cache_front_end``) the
front-end stage (``resize`` for the keyword-spotting nets, else the
representation stage ``cochleagram``) is computed once per clip and only the
layers after it are run while training. Numbers are the same as running the
whole model; it is ~50x faster for the keyword-spotting nets on a CPU.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from model_metamers import interrupts, networks
from model_metamers.errors import UserError
from model_metamers.networks.weights.checkpoints import checkpoint_dir
from model_metamers.training import augment, checkpointing, data, metrics
from model_metamers.training.tasks import tasks_for

STRATEGIES = ('default', 'mirrored', 'one-device')
CACHE_LIMIT_BYTES = 2 * 1024 ** 3


def _print(message):
    print(message, flush=True)  # flushed: training logs are read while they are written


class TrainError(UserError, ValueError):
    """Inconsistent training settings."""


@dataclasses.dataclass
class TrainConfig:
    """Settings of a training run (the flags of ``python -m model_metamers.train``).

    ``augment``: ``'auto'`` (on when ``background_dir`` is given, except for the
    keyword-spotting nets, whose data set has noise already), ``'on'`` or ``'off'``.
    ``max_shift_s``: largest time shift of the speech, seconds. ``snr_low`` /
    ``snr_high``: SNR range of the background, dB. ``patience``: epochs without a
    better validation score before stopping (0: never). ``target_accuracy`` /
    ``target_auc``: stop when every softmax / sigmoid task reaches it on validation.
    ``init_weights``: ``'random'`` or a ``.weights.h5`` to start from.
    ``max_steps_per_epoch``: cap on training steps per epoch (quick runs, tests).
    """

    network: str
    data: str
    output_dir: str = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.001
    seed: int = 0
    patience: int = 2
    target_accuracy: float = None
    target_auc: float = None
    augment: str = 'auto'
    background_dir: str = None
    augment_validation: bool = True
    max_shift_s: float = 0.25
    snr_low: float = -10.0
    snr_high: float = 10.0
    strategy: str = 'default'
    cache_front_end: str = 'auto'
    resume: bool = True
    init_weights: str = 'random'
    max_steps_per_epoch: int = None


def check_config(config):
    """Reject numbers no training run can use, before the network or the data are loaded."""
    c = config
    rules = [
        ('epochs', c.epochs >= 1, 'at least 1', 10),
        ('batch_size', c.batch_size >= 1, 'at least 1', 64),
        ('learning_rate', bool(np.isfinite(c.learning_rate) and c.learning_rate >= 0),
         '0 or more', 0.001),
        ('seed', c.seed >= 0, '0 or more', 0),
        ('patience', c.patience >= 0, '0 (never stop early) or more', 2),
        ('max_shift_s', c.max_shift_s >= 0, '0 or more', 0.25),
        ('snr_high', c.snr_high >= c.snr_low, 'at least --snr_low (%g)' % c.snr_low, 10),
        ('max_steps_per_epoch', c.max_steps_per_epoch is None or c.max_steps_per_epoch >= 1,
         'at least 1', 100),
        ('target_accuracy', c.target_accuracy is None or 0 <= c.target_accuracy <= 1,
         'in [0, 1]', 0.9),
        ('target_auc', c.target_auc is None or 0 <= c.target_auc <= 1, 'in [0, 1]', 0.9),
    ]
    for name, ok, rule, example in rules:
        if not ok:
            raise TrainError('--%s must be %s, got %r; pass e.g. --%s=%s'
                             % (name, rule, getattr(c, name), name, example))


def make_strategy(name):
    """A ``tf.distribute`` strategy: ``default`` (no distribution), ``mirrored`` (all local
    GPUs, or the CPU), ``one-device`` (the first GPU, else the CPU)."""
    if name == 'default':
        return tf.distribute.get_strategy()
    if name == 'mirrored':
        return tf.distribute.MirroredStrategy()
    if name == 'one-device':
        gpus = tf.config.list_logical_devices('GPU')
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else '/cpu:0')
    raise TrainError('--strategy must be one of %s, got %r' % (', '.join(STRATEGIES), name))


def _augmentation_on(config):
    from model_metamers.networks.audio import kws
    if config.augment not in ('auto', 'on', 'off'):
        raise TrainError("--augment must be auto, on or off, got %r" % (config.augment,))
    if config.augment == 'on' and not config.background_dir:
        raise TrainError('--augment=on needs --background_dir (a folder of background WAV clips)')
    if config.augment == 'auto':
        return bool(config.background_dir) and config.network not in kws.NETWORKS
    return config.augment == 'on'


def _front_end_stage(net):
    if 'resize' in net.stages:
        return 'resize'
    return net.representation_stage


def _settings(config):
    """The settings a resumed run must share with the run it continues."""
    keys = ('network', 'data', 'batch_size', 'learning_rate', 'seed', 'augment', 'background_dir',
            'max_shift_s', 'snr_low', 'snr_high', 'init_weights')
    return {k: getattr(config, k) for k in keys}


def compute_stage(net, stage, waves, batch_size=128):
    """Stage ``stage`` of ``net`` for every waveform of ``waves`` ``[n, T]`` (numpy, float32)."""
    model = net.submodel([stage])
    out = [model(tf.constant(waves[i:i + batch_size]), training=False)[stage].numpy()
           for i in range(0, len(waves), batch_size)]
    return np.concatenate(out).astype(np.float32)


def adapt_normalization(net, features):
    """Set the ``normalization`` layer's statistics from its input over the training set.

    ``features``: the layer's input (the ``resize`` stage) for every training clip,
    numpy ``[n, ..., channels]``. Per-channel mean and (population) variance, in float64.
    Returns ``(mean, variance)`` or None when the network has no such layer.
    """
    try:
        layer = net.model.get_layer('normalization')
    except ValueError:
        return None
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    mean, variance = flat.mean(axis=0), flat.var(axis=0)
    layer.set_statistics(mean, variance)
    return mean, variance


class Trainer:
    """Holds the network, data and optimiser of one run; :meth:`run` trains it."""

    def __init__(self, config, log=_print):
        check_config(config)
        self.config = config
        self.log = log or (lambda m: None)
        self.strategy = make_strategy(config.strategy)
        self.output_dir = config.output_dir or checkpoint_dir()
        self.paths = checkpointing.paths(self.output_dir, config.network)
        networks.modality_of(config.network)
        with self.strategy.scope():
            self.net = networks.build(config.network, weights=config.init_weights, seed=config.seed)
            if self.net.modality != 'audio':
                raise TrainError('%s is an image network; the training pipeline trains audio '
                                 'networks' % config.network)
            self.tasks = tasks_for(self.net)
            self.optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=0.9, beta_2=0.999,
                                                   epsilon=1e-7)
        self.augmenting = _augmentation_on(config)
        self.n_samples = int(np.prod(self.net.input_shape))
        self._load_data()
        self._make_model()

    # ------------------------------------------------------------- data
    def _load_data(self):
        c = self.config
        self.splits = {}
        for split in data.SPLITS:
            try:
                ds, n = data.dataset(c.data, split, self.net, self.tasks)
            except data.DataError:
                if split == 'test':
                    continue
                raise
            if n == 0 and split != 'test':
                raise TrainError('the %s split of %s is empty; label clips with split=%s'
                                 % (split, c.data, split))
            if n:
                self.splits[split] = data.to_numpy(ds)
        self.mixer = None
        if self.augmenting:
            bgs, lengths = augment.load_backgrounds(c.background_dir, self.net.sample_rate,
                                                    self.n_samples)
            self.mixer = augment.make_mixer(bgs, lengths, self.n_samples,
                                            int(round(c.max_shift_s * self.net.sample_rate)),
                                            c.snr_low, c.snr_high, c.seed)
            self.log('augmentation: %d background clips, SNR [%g, %g] dB, shift up to %g s%s'
                     % (len(lengths), c.snr_low, c.snr_high, c.max_shift_s,
                        '' if c.augment_validation else ' (training clips only)'))
        n_train = len(self.splits['train'][0])
        stage = _front_end_stage(self.net)
        size = n_train * int(np.prod(self.net.stages[stage].shape[1:])) * 4 if stage else 0
        if c.cache_front_end not in ('auto', 'on', 'off'):
            raise TrainError('--cache_front_end must be auto, on or off, got %r' % c.cache_front_end)
        self.cache_stage = None
        if stage and not self.augmenting and (
                c.cache_front_end == 'on' or (c.cache_front_end == 'auto' and size < CACHE_LIMIT_BYTES)):
            self.cache_stage = stage
        if c.cache_front_end == 'on' and self.cache_stage is None:
            raise TrainError('--cache_front_end=on needs augmentation off (the front end changes '
                             'with every mix)')
        self.features = {}
        if self.cache_stage:
            t = time.time()
            for split, (waves, _) in self.splits.items():
                self.features[split] = compute_stage(self.net, self.cache_stage, waves)
            self.log('front end cached at stage %s for %s clips (%.0f s)'
                     % (self.cache_stage, '/'.join(str(len(v)) for v in self.features.values()),
                        time.time() - t))

    def inputs(self, split):
        """Model inputs of a split: cached front-end features, or waveforms."""
        return self.features[split] if self.cache_stage else self.splits[split][0]

    def _make_model(self):
        outputs = {t.name: self.net.stages[t.stage] for t in self.tasks}
        inputs = self.net.stages[self.cache_stage] if self.cache_stage else self.net.inputs
        with self.strategy.scope():
            self.model = keras.Model(inputs, outputs, name='%s_training' % self.net.name)
            # optimizer slots made here, not lazily inside the tf.function of the train step
            self.optimizer.build(self.model.trainable_variables)

    def adapt(self):
        """Normalisation statistics from the training clips (keyword-spotting nets)."""
        if 'resize' not in self.net.stages:
            return None
        feats = (self.features['train'] if self.cache_stage == 'resize'
                 else compute_stage(self.net, 'resize', self.splits['train'][0]))
        stats = adapt_normalization(self.net, feats)
        if stats is not None:
            self.log('normalization adapted on %d training clips: mean %s, variance %s'
                     % (len(feats), np.round(stats[0], 4), np.round(stats[1], 4)))
        return stats

    def _dataset(self, split, epoch, training):
        x = self.inputs(split)
        y = self.splits[split][1]
        n = len(x)
        ds = tf.data.Dataset.from_tensor_slices((x, y, np.arange(n, dtype=np.int64)))
        if training:
            ds = ds.shuffle(n, seed=self.config.seed * 100003 + epoch, reshuffle_each_iteration=False)
        # the paper augments training and validation clips; test clips stay clean
        if self.mixer is not None and (training or (split == 'val' and self.config.augment_validation)):
            mix_epoch = epoch if training else 0
            mixer = self.mixer

            def mix(wave, target, index):
                return mixer(wave, mix_epoch, index), target, index

            ds = ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

        def drop_index(x, target, index):
            return x, target

        ds = ds.map(drop_index)
        bs = self.config.batch_size
        ds = ds.batch(bs, drop_remainder=training and n >= bs)
        if training and self.config.max_steps_per_epoch:
            ds = ds.take(self.config.max_steps_per_epoch)
        return ds.prefetch(tf.data.AUTOTUNE)

    # ------------------------------------------------------------- steps
    def _make_train_step(self):
        tasks, model, optimizer = self.tasks, self.model, self.optimizer
        strategy = self.strategy

        def step(x, y):
            with tf.GradientTape() as tape:
                out = model(x, training=True)
                per_example = tf.add_n([t.per_example_loss(y[t.name], out[t.name]) for t in tasks])
                # mean over the global batch, so gradients add up correctly across replicas
                loss = tf.nn.compute_average_loss(per_example)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        @tf.function
        def train_step(x, y):
            per_replica = strategy.run(step, args=(x, y))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        return train_step

    def predict(self, split):
        """``{task: logits}`` numpy for every clip of a split (inference mode, no augmentation
        unless validation augmentation is on and the split is val)."""
        outs = {t.name: [] for t in self.tasks}
        if getattr(self, '_predict', None) is None:
            model = self.model

            @tf.function
            def predict(x):
                return model(x, training=False)

            self._predict = predict  # one function for every evaluation: traced once per shape
        predict = self._predict

        for x, _ in self._dataset(split, 0, training=False):
            out = predict(x)
            for t in self.tasks:
                outs[t.name].append(out[t.name].numpy())
        return {k: np.concatenate(v) for k, v in outs.items()}

    def evaluate(self, split):
        """``{task: metric}`` and the mean loss over the split."""
        logits = self.predict(split)
        targets = self.splits[split][1]
        result = {}
        loss = 0.0
        for t in self.tasks:
            result['%s_%s' % (t.name, t.metric_name)] = metrics.task_metric(
                t, targets[t.name], logits[t.name])
            loss += float(np.mean(t.per_example_loss(tf.constant(targets[t.name]),
                                                     tf.constant(logits[t.name])).numpy()))
        result['loss'] = loss
        return result

    def score(self, result):
        return float(np.mean([result['%s_%s' % (t.name, t.metric_name)] for t in self.tasks]))

    def targets_reached(self, result):
        c = self.config
        wanted = []
        for t in self.tasks:
            target = c.target_accuracy if t.kind == 'softmax' else c.target_auc
            if target is not None:
                wanted.append(result['%s_%s' % (t.name, t.metric_name)] >= target)
        return bool(wanted) and all(wanted)

    # ------------------------------------------------------------- run
    def _weights_attrs(self, epoch, result):
        from model_metamers import __version__
        return {'epoch': int(epoch), 'val_score': float(self.score(result)),
                'trained_by': 'model_metamers.train %s' % __version__}

    def _resume(self):
        """The saved state if this run continues it (weights and optimizer restored), else None."""
        state = checkpointing.load_state(self.paths['state'])
        if not (self.config.resume and state and os.path.isfile(self.paths['last'])):
            return None
        saved, now = state.get('settings') or {}, _settings(self.config)
        if saved != now:
            differ = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
            raise TrainError('%s holds a run with other settings: %s; repeat those settings to resume, '
                             'pass --noresume to start over, or use another --output_dir'
                             % (self.paths['state'], '; '.join('--%s was %r, now %r'
                                                              % (k, saved.get(k), now.get(k))
                                                              for k in differ)))
        from model_metamers import weights_io
        weights_io.load_weights(self.net.model, self.paths['last'])
        if os.path.isfile(self.paths['optimizer']):
            checkpointing.load_optimizer(self.optimizer, self.model.trainable_variables,
                                         self.paths['optimizer'])
        self.log('resuming %s after epoch %d' % (self.config.network, state['epochs_done']))
        return state

    def run(self):
        """Train; returns the final state dict (history, best epoch, val and test metrics)."""
        c = self.config
        state = self._resume()
        if state is None:
            self.adapt()
            state = {'settings': _settings(c), 'epochs_done': 0, 'history': [], 'best_score': None,
                     'best_epoch': None, 'bad_epochs': 0, 'stopped': None}
        if state.get('stopped') in ('target', 'patience'):
            self.log('run already stopped (%s); nothing to do' % state['stopped'])
            return state
        train_step = self._make_train_step()
        epoch = state['epochs_done']
        while epoch < c.epochs:
            interrupts.check()
            epoch += 1
            t0 = time.time()
            losses = []
            for x, y in self.strategy.experimental_distribute_dataset(
                    self._dataset('train', epoch, training=True)):
                losses.append(float(train_step(x, y)))
                interrupts.check()
            result = self.evaluate('val')
            result.update(epoch=epoch, train_loss=float(np.mean(losses)) if losses else float('nan'),
                          seconds=round(time.time() - t0, 1))
            state['history'].append(result)
            score = self.score(result)
            improved = state['best_score'] is None or score > state['best_score']
            if improved:
                state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
                checkpointing.save_weights(self.net, self.paths['best'],
                                           self._weights_attrs(epoch, result))
            else:
                state['bad_epochs'] += 1
            checkpointing.save_weights(self.net, self.paths['last'], self._weights_attrs(epoch, result))
            checkpointing.save_optimizer(self.optimizer, self.paths['optimizer'])
            state['epochs_done'] = epoch
            self.log('epoch %d: train loss %.4f, val %s (%.0f s)%s'
                     % (epoch, result['train_loss'],
                        ', '.join('%s %.4f' % (k, v) for k, v in result.items()
                                  if k not in ('epoch', 'train_loss', 'seconds')),
                        result['seconds'], ' *best*' if improved else ''))
            if self.targets_reached(result):
                state['stopped'] = 'target'
            elif c.patience and state['bad_epochs'] >= c.patience:
                state['stopped'] = 'patience'
            checkpointing.save_state(self.paths['state'], state)
            if state['stopped']:
                self.log('early stop after epoch %d (%s)' % (epoch, state['stopped']))
                break
        if state['stopped'] is None:
            state['stopped'] = 'epochs'
        state['final'] = self.final_metrics()
        checkpointing.save_state(self.paths['state'], state)
        return state

    def final_metrics(self):
        """Val and test metrics of the best weights (loaded back into the network)."""
        from model_metamers import weights_io
        if os.path.isfile(self.paths['best']):
            weights_io.load_weights(self.net.model, self.paths['best'])
        out = {split: self.evaluate(split) for split in ('val', 'test') if split in self.splits}
        for split, result in out.items():
            self.log('best weights (%s), %s: %s' % (
                self.paths['best'], split, ', '.join('%s %.4f' % kv for kv in result.items())))
        return out


def train(config, log=_print):
    """Train a network as ``config`` says; returns the final state (see :meth:`Trainer.run`)."""
    return Trainer(config, log=log).run()


def interrupted_message(config):
    """What to tell after Ctrl-C: the last epoch saved in ``config.output_dir`` and how to resume.

    Every checkpoint is written atomically after an epoch, so the run resumes
    from the last finished epoch; only the epoch under way is lost.
    """
    output_dir = config.output_dir or checkpoint_dir()
    state = checkpointing.load_state(checkpointing.paths(output_dir, config.network)['state'])
    done = int(state.get('epochs_done', 0)) if state else 0
    if not done:
        return ('interrupted before the first epoch of %s finished; nothing was saved in %s. Run the '
                'same command to start again' % (config.network, output_dir))
    return ('interrupted: %s stopped during epoch %d; the run up to epoch %d is saved in %s. Run the '
            'same command to resume after epoch %d' % (config.network, done + 1, done, output_dir, done))
