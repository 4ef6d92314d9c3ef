"""Optimisation procedures: what is minimised and how the input is updated each step.

* :class:`Feather2019` (default, the paper): ``tf.nn.l2_loss`` at the matched layer,
  TF1 Adam with an exponentially decaying learning rate, 15000 iterations.
* :class:`Feather2023` (the Nature Neuroscience follow-up, opt-in): normalised L2
  distance, fixed-length L2-normalised gradient steps, hard clamp, step size
  halved every 3000 of 24000 iterations.

Each procedure works on functional state (plain tensors), so a chunk of steps runs
in one ``tf.while_loop`` and the state can be checkpointed and distributed.
"""

import numpy as np
import tensorflow as tf

PROCEDURES = ('feather2019', 'feather2023')


def _flat_sum(x):
    return tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


class Feather2019:
    """L2 loss + Adam exactly as the original TF1 loop ran it.

    Loss ``sum((target - current)^2) / 2`` (no shape normalisation). Adam with
    beta1 0.9, beta2 0.999, epsilon 1e-8 (TF1's default) and learning rate
    ``lr * 0.95 ** (step / 1000)`` (continuous decay). The update uses the same
    float32 operations, in the same order, as TF1's ``ApplyAdam`` kernel,
    including float32 running products for ``beta1^t`` and ``beta2^t``.

    Args:
      learning_rate: initial learning rate.
      clip: ``(low, high)`` to clip the input to after every step (images), or None.
    """

    name = 'feather2019'
    default_iterations = 15000
    initial_noise = 'feather2019'

    def __init__(self, learning_rate=0.001, clip=None, decay_rate=0.95, decay_steps=1000,
                 beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.learning_rate = float(learning_rate)
        self.clip = clip
        self.decay_rate = decay_rate
        self.decay_steps = decay_steps
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def config(self):
        return dict(procedure=self.name, learning_rate=self.learning_rate, clip=self.clip,
                    decay_rate=self.decay_rate, decay_steps=self.decay_steps, beta1=self.beta1,
                    beta2=self.beta2, epsilon=self.epsilon)

    def objective(self, current, target):
        """Scalar summed over the batch (its gradient per stimulus is that stimulus's own)."""
        return tf.nn.l2_loss(target - current)

    def loss_per_stimulus(self, current, target):
        """``[batch]`` losses as the original logged them."""
        return 0.5 * _flat_sum(tf.square(target - current))

    def step_size(self, step):
        """Decayed learning rate at (0-based) update ``step``, float32 as TF1 computed it."""
        lr = tf.constant(self.learning_rate, tf.float32)
        p = tf.cast(step, tf.float32) / tf.constant(self.decay_steps, tf.float32)
        return lr * tf.pow(tf.constant(self.decay_rate, tf.float32), p)

    def initial_state(self, x):
        return {'m': tf.zeros_like(x), 'v': tf.zeros_like(x),
                'beta1_power': tf.constant(self.beta1, tf.float32),
                'beta2_power': tf.constant(self.beta2, tf.float32)}

    def apply(self, x, grad, state, step):
        """One Adam update. Returns ``(x, state)``."""
        one = tf.constant(1, tf.float32)
        beta1 = tf.constant(self.beta1, tf.float32)
        beta2 = tf.constant(self.beta2, tf.float32)
        eps = tf.constant(self.epsilon, tf.float32)
        b1p, b2p = state['beta1_power'], state['beta2_power']
        alpha = self.step_size(step) * tf.sqrt(one - b2p) / (one - b1p)
        m = state['m'] + (grad - state['m']) * (one - beta1)
        v = state['v'] + (tf.square(grad) - state['v']) * (one - beta2)
        x = x - (m * alpha) / (tf.sqrt(v) + eps)
        if self.clip is not None:
            x = tf.clip_by_value(x, self.clip[0], self.clip[1])
        return x, {'m': m, 'v': v, 'beta1_power': b1p * beta1, 'beta2_power': b2p * beta2}


class Feather2023:
    """Normalised-gradient procedure of Feather et al. 2023 (opt-in).

    Loss ``||current - target||_2 / ||target||_2`` per stimulus. Each step moves the
    input by exactly ``step_size`` along ``-grad / (||grad||_2 + 1e-10)`` (per
    stimulus; the 2023 code's ``L2Step``), then clamps it to ``clamp``. The step
    size starts at ``initial_step_size`` and is halved every ``block_length``
    steps: ``stages`` blocks (the 2023 scripts' ``-N``, default 8) of
    ``block_length`` iterations (their ``-I``, default 3000), 24000 in all.
    """

    name = 'feather2023'
    initial_noise = 'feather2023'

    def __init__(self, initial_step_size=1.0, block_length=3000, clamp=(-1.0, 1.0), stages=8):
        self.learning_rate = float(initial_step_size)
        self.block_length = int(block_length)
        self.stages = int(stages)
        if self.block_length < 1 or self.stages < 1:
            raise ValueError('the 2023 schedule needs stage_iterations >= 1 and stages >= 1, got %d '
                             'and %d; pass e.g. --stage_iterations=3000 --stages=8'
                             % (self.block_length, self.stages))
        self.clip = clamp

    @property
    def default_iterations(self):
        """``stages x block_length``: the whole schedule."""
        return self.block_length * self.stages

    def config(self):
        return dict(procedure=self.name, learning_rate=self.learning_rate,
                    block_length=self.block_length, stages=self.stages, clip=self.clip)

    def loss_per_stimulus(self, current, target):
        diff = tf.sqrt(_flat_sum(tf.square(current - target)))
        return diff / tf.sqrt(_flat_sum(tf.square(target)))

    def objective(self, current, target):
        return tf.reduce_sum(self.loss_per_stimulus(current, target))

    def step_size(self, step):
        block = tf.cast(tf.math.floordiv(tf.cast(step, tf.int64), self.block_length), tf.float32)
        return tf.constant(self.learning_rate, tf.float32) * tf.pow(tf.constant(0.5, tf.float32), block)

    def initial_state(self, x):
        return {}

    def apply(self, x, grad, state, step):
        norm = tf.sqrt(_flat_sum(tf.square(grad)))
        norm = tf.reshape(norm, [-1] + [1] * (len(x.shape) - 1))
        x = x - self.step_size(step) * grad / (norm + 1e-10)
        if self.clip is not None:
            x = tf.clip_by_value(x, self.clip[0], self.clip[1])
        return x, state


def default_learning_rate(network, procedure):
    """The step size used when none is given: the network's Adam rate for ``'feather2019'``;
    1.0 (the 2023 procedure's normalised-gradient step, scaled by its schedule) otherwise."""
    return network.default_learning_rate if procedure == 'feather2019' else 1.0


def make_procedure(name, learning_rate, modality, domain, stage_iterations=None, stages=None):
    """Procedure object for a network modality and optimisation domain.

    Images are clipped to [0, 1] by both procedures. The 2023 procedure clamps to
    its data set's ``min_value`` / ``max_value`` (``robustness/datasets.py``):
    waveforms [-1, 1], cochleagrams [0, 100]; the 2019 one clips neither.
    ``stage_iterations`` / ``stages``: the 2023 schedule (default 3000 x 8).
    """
    if name == 'feather2019':
        if stage_iterations is not None or stages is not None:
            raise ValueError('--stage_iterations and --stages set the schedule of '
                             '--procedure=feather2023; feather2019 runs --iterations with a '
                             'continuous decay: drop them or pass --procedure=feather2023')
        clip = (0.0, 1.0) if modality == 'image' and domain == 'stimulus' else None
        return Feather2019(learning_rate, clip=clip)
    if name == 'feather2023':
        if domain != 'stimulus':
            clamp = (0.0, 100.0)
        elif modality == 'image':
            clamp = (0.0, 1.0)
        else:
            clamp = (-1.0, 1.0)
        return Feather2023(learning_rate, clamp=clamp,
                           block_length=3000 if stage_iterations is None else stage_iterations,
                           stages=8 if stages is None else stages)
    raise ValueError('unknown procedure %r; choose one of %s' % (name, ', '.join(PROCEDURES)))


def state_to_numpy(state):
    return {k: np.asarray(v) for k, v in state.items()}
