"""Checkpoint variables that belong to training, not to the network: the one list, and why.

Published checkpoints hold more than the weights a network computes with. A
loader reads the network's variables through an explicit name map and must
account for every other variable: either it is one of the kinds below (skipped,
and reported in one line), or it is an error, because a variable of the
network that the Keras model does not use means the model would compute
something else than the checkpoint's network.

=========================  ==================================  ==============================================
kind                       names                               why it is not part of the network
=========================  ==================================  ==============================================
training step              ``global_step``                     the optimiser's step counter (every TF1
                                                               training script; model-zoo TF-Slim files)
mean pixel                 ``<scope>/mean_rgb`` (shape [3])    VGG-19 of the model zoo was converted from
                                                               Caffe and keeps Caffe's mean pixel; slim's
                                                               ``vgg_19`` never reads it: the preprocessing
                                                               subtracts fixed means (``vgg.MEANS``)
optimiser slot             ``<var>/Adam``, ``<var>/Adam_1``,   accumulators of Adam / Momentum / RMSProp /
                           ``<var>/Momentum``, ``/RMSProp``,   Adagrad / Ftrl, one per trained variable
                           ``/RMSProp_1``, ``/Adagrad``,        (the McDermott lab's audio checkpoints were
                           ``/Ftrl``, ``/Ftrl_1``,             trained with Adam)
                           ``beta1_power``, ``beta2_power``
moving average             ``<var>/ExponentialMovingAverage``  shadow copies kept by
                                                               ``tf.train.ExponentialMovingAverage``; the
                                                               plain values are the checkpoint's weights, the
                                                               shadows are used only when asked (``use_ema``)
=========================  ==================================  ==============================================
"""

import collections

Kind = collections.namedtuple('Kind', 'label why')

TRAINING_STEP = Kind('training step', "the optimiser's step counter")
MEAN_PIXEL = Kind('mean pixel', "Caffe's mean pixel kept by the converted VGG checkpoint; the "
                                'preprocessing subtracts fixed means instead')
OPTIMIZER_SLOT = Kind('optimiser slots', 'accumulators of the training optimiser')
MOVING_AVERAGE = Kind('moving averages', 'ExponentialMovingAverage shadows (used only with use_ema)')

EMA_SUFFIX = '/ExponentialMovingAverage'
SLOT_SUFFIXES = ('/Adam', '/Adam_1', '/Momentum', '/RMSProp', '/RMSProp_1', '/Adagrad', '/Ftrl',
                 '/Ftrl_1')
_OPTIMIZER_NAMES = ('beta1_power', 'beta2_power')


def kind_of(name):
    """The :class:`Kind` of a checkpoint variable that is not part of a network, else None."""
    base = name.rsplit('/', 1)[-1]
    if base == 'global_step':
        return TRAINING_STEP
    if base == 'mean_rgb':
        return MEAN_PIXEL
    if name.endswith(EMA_SUFFIX):
        return MOVING_AVERAGE
    if base in _OPTIMIZER_NAMES or name.endswith(SLOT_SUFFIXES):
        return OPTIMIZER_SLOT
    return None


def ema_name(name):
    """Name of the moving-average shadow of variable ``name``."""
    return name + EMA_SUFFIX


def skipped(names):
    """``{Kind: [names]}`` of the bookkeeping variables among ``names`` (sorted names)."""
    out = collections.OrderedDict()
    for name in sorted(names):
        kind = kind_of(name)
        if kind is not None:
            out.setdefault(kind, []).append(name)
    return out


def report(label, names, shapes=None, ema_used=0, outside=(), notes=()):
    """One line saying which of ``names`` a load skipped, by kind, e.g.

    ``checkpoint X: skipped 2 training variables (training step: global_step; mean pixel:
    vgg_19/mean_rgb (3,))``. ``ema_used``: how many values came from moving
    averages; ``outside``: variables outside the network's scope, not read;
    ``notes``: further parts of the line (the loader's own). Returns '' when
    there is nothing to say.
    """
    groups = skipped(names)
    parts = []
    for kind, members in groups.items():
        if len(members) <= 2:
            shown = ', '.join('%s %s' % (n, tuple(shapes[n])) if shapes and kind is MEAN_PIXEL else n
                              for n in members)
        else:
            shown = '%d variables' % len(members)
        parts.append('%s: %s' % (kind.label, shown))
    if outside:
        parts.append('outside the network scope, not read: %s' % (
            ', '.join(outside) if len(outside) <= 3 else '%d variables' % len(outside)))
    n = sum(len(m) for m in groups.values()) + len(outside)
    if not n and not ema_used and not notes:
        return ''
    line = 'checkpoint %s' % label
    if n or ema_used:
        line += ': skipped %d training variable(s)%s' % (n, ' (%s)' % '; '.join(parts) if parts else '')
    if ema_used:
        line += '; %d weight(s) taken from their ExponentialMovingAverage shadows' % ema_used
    return '; '.join([line] + list(notes))
