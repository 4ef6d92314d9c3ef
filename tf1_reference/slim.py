"""Independent reference for the image networks: the TF-Slim graphs themselves (test code only).

Builds ``tf_slim.nets.vgg.vgg_19``, ``inception_v3.inception_v3`` or
``resnet_v2.resnet_v2_101`` in a ``tf.Graph()`` (TF1 graph mode, as the
original project ran them), gives every variable random values with
non-trivial batch-norm statistics, saves a real slim-format checkpoint with
``tf.compat.v1.train.Saver`` and evaluates every end point.
"""

import os
import sys

import numpy as np
import tensorflow as tf

# tf_slim's batch_norm imports tf_keras.legacy_tf_layers, which tf-keras 2.17
# ships as tf_keras.src.legacy_tf_layers.
import tf_keras  # noqa: E402,F401
import tf_keras.src.legacy_tf_layers as _legacy_tf_layers  # noqa: E402

sys.modules.setdefault('tf_keras.legacy_tf_layers', _legacy_tf_layers)

import tf_slim  # noqa: E402
from tf_slim.nets import inception_v3, resnet_v2, vgg  # noqa: E402

# TF1's fused batch norm raised epsilon to at least 1.001e-5; TF 2.17 no longer
# does, so the reference ResNet is built with the epsilon TF1 actually used.
TF1_RESNET_EPSILON = 1.001e-5

IMAGE_SIZE = {'vgg_19': 224, 'inception_v3': 299, 'resnet_v2_101': 299}


def _preprocess(name, images):
    """The original projects' preprocessing, written with TF1 ops (input in [0, 1])."""
    if name == 'vgg_19':
        means = np.array([123.68, 116.779, 103.939], np.float32)[None, None, None]
        return tf.subtract(tf.multiply(images, 255.0), means)
    return tf.multiply(tf.subtract(images, 0.5), 2.0)


def _network(name, inputs, is_training=False, reuse=None, bn_decay=None):
    """The slim network; ``bn_decay`` overrides the arg scope's batch-norm decay."""
    if name == 'vgg_19':
        with tf_slim.arg_scope(vgg.vgg_arg_scope()):
            return vgg.vgg_19(inputs, num_classes=1000, is_training=is_training)
    if name == 'inception_v3':
        kw = {} if bn_decay is None else {'batch_norm_decay': bn_decay}
        with tf_slim.arg_scope(inception_v3.inception_v3_arg_scope(**kw)):
            return inception_v3.inception_v3(inputs, num_classes=1001, is_training=is_training,
                                             reuse=reuse)
    kw = {} if bn_decay is None else {'batch_norm_decay': bn_decay}
    with tf_slim.arg_scope(resnet_v2.resnet_arg_scope(batch_norm_epsilon=TF1_RESNET_EPSILON, **kw)):
        return resnet_v2.resnet_v2_101(inputs, num_classes=1001, is_training=is_training,
                                       reuse=reuse)


def _random_value(var_name, shape, rng):
    """Random values that keep activations O(1) through the depth and make BN non-trivial."""
    leaf = var_name.split('/')[-1]
    if leaf == 'weights':
        fan_in = int(np.prod(shape[:-1]))
        scale = np.sqrt(2.0 / fan_in)
        if '/conv3/' in var_name or '/shortcut/' in var_name:
            scale *= 0.5  # keep ResNet's residual stream from growing unit after unit
        return rng.normal(0.0, scale, shape)
    if leaf == 'biases':
        return rng.normal(0.0, 0.05, shape)
    if leaf == 'beta':
        return rng.normal(0.0, 0.2, shape)
    if leaf == 'gamma':
        return rng.uniform(0.5, 1.5, shape)
    if leaf == 'moving_mean':
        return rng.normal(0.0, 0.3, shape)
    if leaf == 'moving_variance':
        return rng.uniform(0.3, 2.0, shape)
    raise ValueError('no rule for variable %s' % var_name)


class SlimReference:
    """A slim network in its own graph and session, with a saved checkpoint.

    Args:
      name: ``'vgg_19'``, ``'inception_v3'`` or ``'resnet_v2_101'``.
      checkpoint_prefix: where to save (``Saver.save`` path).
      seed: numpy seed of the random values.
      calibration_images: ``[b, H, W, 3]`` in [0, 1]; the batch-norm moving
        statistics are set to the batch statistics of these images'
        activations, then perturbed, so activations stay O(1) through the depth.
      write_version: ``'V1'`` (one file, like the published 2016/2017 checkpoints) or ``'V2'``.
    """

    def __init__(self, name, checkpoint_prefix, calibration_images, seed=0, write_version='V2'):
        self.name = name
        self.graph = tf.Graph()
        size = IMAGE_SIZE[name]
        rng = np.random.default_rng(seed)
        with self.graph.as_default():
            self.images = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3])
            self.logits, end_points = _network(name, _preprocess(name, self.images))
            self.end_points = dict(end_points)
            calibrate = None
            if name != 'vgg_19':
                # A training-mode twin sharing the variables, with decay 0: one run
                # of its update ops sets every moving statistic to the batch
                # statistics of its (batch-normalised) input.
                n_updates = len(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS))
                _network(name, _preprocess(name, self.images), is_training=True, reuse=True,
                         bn_decay=0.0)
                calibrate = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)[n_updates:]
            tf.compat.v1.train.get_or_create_global_step()  # a non-model variable, as in real ckpts
            if name == 'vgg_19':
                # The model zoo's vgg_19.ckpt (vgg_19_2016_08_28.tar.gz) was converted from Caffe
                # and keeps Caffe's mean pixel beside the network: vgg_19/mean_rgb, shape [3].
                tf.compat.v1.get_variable('vgg_19/mean_rgb', shape=[3], dtype=tf.float32,
                                          trainable=False)
            self.variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
            # One placeholder + assign op per variable, so all values go in one run
            # (Variable.load costs a full session set-up per call).
            self._feeds = {n: tf.compat.v1.placeholder(v.dtype.base_dtype, v.shape)
                           for n, v in self.variables.items()}
            self._assigns = {n: v.assign(self._feeds[n]) for n, v in self.variables.items()}
            self.session = tf.compat.v1.Session(graph=self.graph)
            values = {n: _random_value(n, v.shape.as_list(), rng)
                      for n, v in self.variables.items() if n not in ('global_step', 'vgg_19/mean_rgb')}
            values['global_step'] = np.int64(12345)
            if 'vgg_19/mean_rgb' in self.variables:
                values['vgg_19/mean_rgb'] = np.array([123.68, 116.779, 103.939], np.float32)
            self._assign(values)
            if calibrate:
                self.session.run(calibrate, {self.images: calibration_images})
                self._perturb_batch_norm(rng)
            version = (tf.compat.v1.train.SaverDef.V1 if write_version == 'V1'
                       else tf.compat.v1.train.SaverDef.V2)
            saver = tf.compat.v1.train.Saver(write_version=version)
            os.makedirs(os.path.dirname(checkpoint_prefix), exist_ok=True)
            self.checkpoint = saver.save(self.session, checkpoint_prefix, write_meta_graph=False)

    def _assign(self, values):
        self.session.run([self._assigns[n] for n in values],
                         {self._feeds[n]: np.asarray(v, self.variables[n].dtype.base_dtype.as_numpy_dtype)
                          for n, v in values.items()})

    def _perturb_batch_norm(self, rng):
        """Move the calibrated statistics off the batch's: means by up to 0.3 std, variances x0.5-2."""
        names = sorted(n for n in self.variables if n.endswith(('/moving_mean', '/moving_variance')))
        current = self.session.run({n: self.variables[n] for n in names})
        values = {}
        for n in names:
            if n.endswith('/moving_variance'):
                m_name = n[:-len('moving_variance')] + 'moving_mean'
                v, m = current[n], current[m_name]
                std = np.sqrt(v) + 1e-3
                values[m_name] = m + rng.uniform(-0.3, 0.3, m.shape) * std
                values[n] = v * rng.uniform(0.5, 2.0, v.shape)
        self._assign(values)

    def run(self, images, tensors=None):
        """Evaluate ``{name: tensor}`` (default: every end point) on ``images`` ``[b, H, W, 3]``."""
        tensors = self.end_points if tensors is None else tensors
        return self.session.run(tensors, {self.images: images})

    def pre_relu_tensors(self, end_point):
        """The pre-activation tensors of a ReLU end point, in channel order, read off the graph.

        A Relu op gives its input; a ConcatV2 gives those of its inputs, in
        order; anything else (a max-pool branch, an add) gives None.
        """
        def walk(t):
            op = t.op
            if op.type == 'Relu':
                return [op.inputs[0]]
            if op.type == 'ConcatV2':
                parts = [walk(x) for x in op.inputs[:-1]]
                if any(p is None for p in parts):
                    return None
                return [x for p in parts for x in p]
            return None
        return walk(self.end_points[end_point])

    def values(self):
        """``{checkpoint variable name: array}`` as saved."""
        return self.session.run({n: v for n, v in self.variables.items()})

    def close(self):
        self.session.close()
