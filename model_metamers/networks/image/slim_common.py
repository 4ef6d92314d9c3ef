"""Shared pieces of the TF-Slim image networks (VGG-19, Inception-V3, ResNet-101-V2).

:class:`SlimGraphBuilder` creates Keras layers named after the TF-Slim variable
scopes they reproduce and records, while the network is being built:

* ``name_map``: ``{'<keras layer>/<variable>': '<checkpoint variable>'}``, the
  explicit table used to load a TF-Slim checkpoint by variable name;
* ``stages``: every named tensor (slim end points, pre-ReLU tensors, aliases);
* ``relu_stages``: for every stage that is a ReLU output (or a concatenation of
  ReLU outputs), the pre-activation stages in channel order.

:func:`load_slim_checkpoint` reads a TF-Slim checkpoint (V1 single file or V2
prefix) with ``tf.train.load_checkpoint`` and assigns it through the name map.
"""

import collections

import keras
import numpy as np
import tensorflow as tf

from model_metamers import resources
from model_metamers.networks.weights import bookkeeping, checkpoints
from model_metamers.networks.base import MetamerNetwork
from model_metamers.networks.weights.checkpoints import CheckpointError

PRE_RELU_SUFFIX = '/pre_relu'


def keras_layer_name(scope):
    """Keras layer name for a slim scope (Keras 3 forbids ``/`` in layer names)."""
    return scope.replace('/', '.')


class ScaleShift(keras.layers.Layer):
    """Input preprocessing ``(x - subtract) * multiply - means`` in float32, per channel.

    Input ``[batch, H, W, 3]`` in [0, 1] pixel space; output in the network's
    native input range. The operation order is that of the original graphs, so
    round-off is the same.
    """

    def __init__(self, subtract=0.0, multiply=1.0, means=None, name=None, **kwargs):
        super().__init__(name=name, trainable=False, **kwargs)
        self.subtract = float(subtract)
        self.multiply = float(multiply)
        self.means = None if means is None else [float(m) for m in means]

    def call(self, x):
        if self.subtract:
            x = x - tf.constant(self.subtract, tf.float32)
        if self.multiply != 1.0:
            x = x * tf.constant(self.multiply, tf.float32)
        if self.means is not None:
            x = x - tf.constant(np.asarray(self.means, np.float32))
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(subtract=self.subtract, multiply=self.multiply, means=self.means)
        return config


class SpatialSqueeze(keras.layers.Layer):
    """``[batch, 1, 1, C] -> [batch, C]``, slim's ``spatial_squeeze`` (fails on other sizes)."""

    def call(self, x):
        return tf.squeeze(x, [1, 2])

    def compute_output_shape(self, input_shape):
        if input_shape[1] not in (1, None) or input_shape[2] not in (1, None):
            raise ValueError('spatial squeeze needs a 1x1 map, got %s' % (input_shape,))
        return (input_shape[0], input_shape[3])


class SpatialMean(keras.layers.Layer):
    """Mean over height and width keeping both axes: ``[b, H, W, C] -> [b, 1, 1, C]`` (slim ``pool5``)."""

    def call(self, x):
        return tf.reduce_mean(x, [1, 2], keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, 1, input_shape[3])


class SlimGraphBuilder:
    """Builds a Keras functional graph layer by layer, mirroring TF-Slim scopes.

    Args:
      seed: seed of the random initialisation.
      random_init: False when a checkpoint will overwrite every weight (zeros
        initialisers then skip the cost of drawing ~10^8 random numbers).
      initializer: ``'xavier'`` (slim's conv2d default, VGG) or ``'he'``
        (slim's ``variance_scaling_initializer()``, Inception and ResNet).
    """

    def __init__(self, seed=0, random_init=True, initializer='he'):
        self.seed = int(seed)
        self.random_init = bool(random_init)
        self.initializer = initializer
        self.name_map = collections.OrderedDict()
        self.stages = collections.OrderedDict()
        self.relu_stages = {}
        self._relu_parts = {}  # id(tensor) -> (tensor, [pre-ReLU stage names])
        self._n_init = 0

    # ------------------------------------------------------------ initialisers
    def _next_seed(self):
        self._n_init += 1
        return self.seed * 100003 + self._n_init

    def _kernel_initializer(self, stddev=None):
        if not self.random_init:
            return 'zeros'
        if stddev is not None:
            return keras.initializers.TruncatedNormal(stddev=stddev, seed=self._next_seed())
        if self.initializer == 'xavier':
            return keras.initializers.GlorotUniform(seed=self._next_seed())
        return keras.initializers.VarianceScaling(scale=2.0, mode='fan_in',
                                                  distribution='truncated_normal',
                                                  seed=self._next_seed())

    # ------------------------------------------------------------------ stages
    def add_stage(self, name, tensor):
        """Register ``tensor`` as stage ``name`` (and as a ReLU stage if it is one)."""
        if name in self.stages:
            raise ValueError('duplicate stage name %r' % name)
        self.stages[name] = tensor
        parts = self._relu_parts.get(id(tensor))
        if parts is not None and parts[0] is tensor:
            self.relu_stages[name] = list(parts[1])
        return tensor

    def _mark_relu(self, tensor, pre_stage_names):
        self._relu_parts[id(tensor)] = (tensor, list(pre_stage_names))

    def relu_parts(self, tensor):
        """Pre-ReLU stage names of ``tensor`` if it is a ReLU output, else None."""
        parts = self._relu_parts.get(id(tensor))
        return list(parts[1]) if parts is not None and parts[0] is tensor else None

    # ------------------------------------------------------------------ layers
    def conv(self, x, scope, filters, kernel_size, stride=1, padding='same', activation=True,
             batch_norm=None, use_bias=None, stddev=None):
        """Slim ``conv2d``: convolution, optional batch norm, optional ReLU.

        Args:
          x: input ``[batch, H, W, C]``.
          scope: the slim variable scope (``'vgg_19/conv1/conv1_1'``); the
            checkpoint holds ``<scope>/weights``, ``<scope>/biases`` or
            ``<scope>/BatchNorm/...``.
          filters, kernel_size, stride, padding: as slim (``'same'``/``'valid'``).
          activation: apply ReLU (slim's ``activation_fn=relu``).
          batch_norm: None, or ``dict(epsilon=..., scale=bool)`` for slim's
            ``normalizer_fn=batch_norm`` (then there is no bias).
          use_bias: default ``batch_norm is None`` (slim's rule).
          stddev: truncated-normal init stddev (slim's explicit ``trunc_normal``).

        Returns the output tensor. With ``activation`` the pre-ReLU tensor is
        registered as stage ``<scope>/pre_relu``.
        """
        if use_bias is None:
            use_bias = batch_norm is None
        name = keras_layer_name(scope)
        ks = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        layer = keras.layers.Conv2D(
            filters, ks, strides=stride, padding=padding, use_bias=use_bias, name=name,
            kernel_initializer=self._kernel_initializer(stddev), bias_initializer='zeros')
        y = layer(x)
        self.name_map[name + '/kernel'] = scope + '/weights'
        if use_bias:
            self.name_map[name + '/bias'] = scope + '/biases'
        if batch_norm is not None:
            y = self.batch_norm(y, scope + '/BatchNorm', keras_name=name + '.BatchNorm', **batch_norm)
        if activation:
            return self.relu(y, scope)
        return y

    def batch_norm(self, x, scope, epsilon, scale, keras_name=None, activation=False):
        """Slim ``batch_norm`` in inference mode (moving statistics; beta, optional gamma).

        Variables ``<scope>/beta``, ``<scope>/gamma`` (if ``scale``),
        ``<scope>/moving_mean``, ``<scope>/moving_variance``.
        """
        name = keras_name or keras_layer_name(scope)
        layer = keras.layers.BatchNormalization(epsilon=epsilon, center=True, scale=scale,
                                                name=name)
        y = layer(x, training=False)
        for var in (['gamma'] if scale else []) + ['beta', 'moving_mean', 'moving_variance']:
            self.name_map['%s/%s' % (name, var)] = '%s/%s' % (scope, var)
        if activation:
            return self.relu(y, scope)
        return y

    def relu(self, pre, scope):
        """ReLU of ``pre``; registers ``<scope>/pre_relu`` and marks the output as a ReLU stage."""
        pre_name = scope + PRE_RELU_SUFFIX
        self.add_stage(pre_name, pre)
        out = keras.layers.ReLU(name=keras_layer_name(scope) + '.Relu')(pre)
        self._mark_relu(out, [pre_name])
        return out

    def concat(self, tensors, name):
        """Channel concatenation; a concat of ReLU outputs is itself a ReLU stage."""
        out = keras.layers.Concatenate(axis=-1, name=keras_layer_name(name))(list(tensors))
        parts = [self.relu_parts(t) for t in tensors]
        if all(p is not None for p in parts):
            self._mark_relu(out, [n for p in parts for n in p])
        return out


def class_names_for(num_classes):
    """ImageNet names for 1000 or 1001 logits (``'background'`` at index 0), and the offset.

    Returns ``(class_names, logit_offset)`` where logit index
    ``imagenet_index + logit_offset`` is ImageNet-1000 class ``imagenet_index``.
    """
    names = resources.imagenet_classes()
    if num_classes == len(names):
        return names, 0
    if num_classes == len(names) + 1:
        return ['background'] + names, 1
    return ['class_%d' % i for i in range(num_classes)], 0


def _side_by_side(left_title, left, right_title, right):
    width = max([len(left_title)] + [len(s) for s in left]) + 2
    lines = ['    %-*s| %s' % (width, left_title, right_title)]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ''
        b = right[i] if i < len(right) else ''
        lines.append('    %-*s| %s' % (width, a, b))
    return lines


def load_slim_checkpoint(model, name_map, prefix, scope, network_name, ignore_scopes=(),
                         use_ema=False):
    """Assign ``model`` from a TF-Slim checkpoint through ``name_map``.

    Args:
      model: the Keras model.
      name_map: ``{'<keras layer>/<variable>': '<checkpoint variable>'}``.
      prefix: the checkpoint (V2 prefix or V1 file).
      scope: the network's top scope (``'vgg_19'``). Every variable under it
        must be mapped or be training bookkeeping (``global_step``, the
        model zoo's ``vgg_19/mean_rgb``, optimiser slots, moving averages:
        :mod:`bookkeeping`); variables outside it are not read.
      network_name: shown in errors.
      ignore_scopes: sub-scopes in the checkpoint the model deliberately does
        not build (e.g. ``'InceptionV3/AuxLogits'``).
      use_ema: read each weight from its ``ExponentialMovingAverage`` shadow
        where the checkpoint has one.

    Returns the one-line report of what was skipped ('' when nothing was).
    Raises :class:`CheckpointError` when the checkpoint cannot be read, when a
    model variable is missing, or when the checkpoint holds variables of the
    network's scope that the model does not know (listed side by side).
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError('cannot read checkpoint %s for %s (%s): give a TF-Slim checkpoint '
                              '(a .ckpt file or a prefix with .index/.data files)'
                              % (prefix, network_name, str(e).splitlines()[0])) from None
    expected = set(name_map.values())
    missing = sorted(expected - set(shapes))
    unexpected = checkpoints.unaccounted(shapes, expected, scope, ignore_scopes)
    if missing or unexpected:
        lines = ['checkpoint %s does not fit network %s: %d model variables missing, %d unexpected '
                 '(is it the checkpoint of another network or built with other options?)'
                 % (prefix, network_name, len(missing), len(unexpected))]
        lines += _side_by_side('missing (the model needs these)', missing,
                               'unexpected (in the checkpoint, scope %s/)' % scope,
                               ['%s %s' % (n, tuple(shapes[n])) for n in unexpected])
        raise CheckpointError('\n'.join(lines))
    ema_used = 0
    if use_ema:
        name_map, ema_used = checkpoints.with_moving_averages(name_map, shapes, prefix)
    values = {n: reader.get_tensor(n) for n in set(name_map.values())}
    checkpoints.assign_by_name(model, name_map, values, prefix)
    outside = sorted(n for n in shapes if not n.startswith(scope + '/')
                     and bookkeeping.kind_of(n) is None)
    return bookkeeping.report(prefix, [n for n in shapes if n not in expected], shapes,
                              ema_used=ema_used, outside=outside)


def load_weights(model, name_map, weights, network_name, scope, ignore_scopes=(),
                 default_checkpoint=None, use_ema=False):
    """Apply the ``weights`` argument of a builder: ``'random'``, a checkpoint, or ``*.weights.h5``.

    ``'default'`` means ``<checkpoint_dir>/<network>.weights.h5`` when it exists,
    else the published checkpoint file ``<checkpoint_dir>/<default_checkpoint>``
    (where ``python -m model_metamers.fetch`` puts it). ``use_ema``: see
    :func:`load_slim_checkpoint` (checkpoints only).
    Returns ``(kind, path, report)``: ``(kind, path)`` as
    :func:`checkpoints.weights_kind` gives them, ``report`` the one line saying
    which training variables were skipped ('' for none).
    """
    weights = checkpoints.resolve_default(weights, network_name, published_checkpoint=default_checkpoint)
    kind, path = checkpoints.weights_kind(weights, network_name, 'TF-Slim')
    report = ''
    if kind == 'checkpoint':
        report = load_slim_checkpoint(model, name_map, path, scope, network_name, ignore_scopes,
                                      use_ema=use_ema)
    elif use_ema:
        raise CheckpointError('use_ema reads moving averages from a TF-Slim checkpoint; %s weights '
                              'have none (drop use_ema)' % ('random' if kind == 'random' else path))
    elif kind == 'h5':
        checkpoints.load_weights_h5(model, path)
    return kind, path, report


def build_and_load(name, image, graph, metamer_layers, class_names, weights, scope, *, aliases,
                   logits_stage, info, default_checkpoint, ignore_scopes=(), use_ema=False):
    """The common ending of the TF-Slim image builders: the network, then its weights.

    ``graph``: the builder's stage graph (stages, ReLU stages and checkpoint name
    map); ``info``: the network's info (``weights`` and ``weights_report`` are
    added from what :func:`load_weights` loaded). Returns the
    :class:`~model_metamers.networks.base.MetamerNetwork`.
    """
    network = MetamerNetwork(
        name, image, graph.stages, metamer_layers, class_names, 'image',
        relu_stages=graph.relu_stages, aliases=aliases, logits_stage=logits_stage,
        default_learning_rate=0.001, info=info)
    kind, path, report = load_weights(network.model, graph.name_map, weights, name, scope,
                                      ignore_scopes=ignore_scopes,
                                      default_checkpoint=default_checkpoint, use_ema=use_ema)
    network.info['weights'] = path if path else kind
    if report:
        network.info['weights_report'] = report
    return network


def needs_random_init(weights):
    """True when the builder's weights come from the random initialisers."""
    return checkpoints.is_random(weights)
