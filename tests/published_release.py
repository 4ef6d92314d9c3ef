"""Files shaped like the original release, written from the published structure, not our tables.

Sources of each fact (see BUILD_NOTES.md, "The original release's files"):

* network-configuration pickles: a dict with ``'layer_list'`` (``functools.partial``
  objects of TF1 functions) and ``'graph_architecture'`` (``{'layer_type', 'args'}``
  per layer), read by jenellefeather/model_metamers ``build_word_network_*.py``;
  argument names of each layer type and the ``multi_fc_top_classification``
  partial with ``n_classes_dict`` follow the lab's writer
  (msaddler/pitchnet ``functions_brain_network.py``); the layer sequence and
  sizes are those of the supplement's Tables S2/S3 (SPEC §2) written out here;
* the functions are pickled by reference under the module paths of TF 1.13
  (``tensorflow.python.layers.convolutional.conv2d`` ...) and the lab's
  ``audio_cnn_helpers`` module (``hanning_pooling``,
  ``multi_fc_top_classification``); stand-ins are put under those names
  only while pickling, so the files name exactly those globals;
* null distributions: ``{<original layer name>: rho values}`` with the keys of
  the build scripts' ``metamer_gen_layers`` (``visualization_input``,
  ``conv_<i>_jittered_relu``, ``pool_0_0``, ..., ``logits``; VGG
  ``conv1_2_jittered_relu`` ... ``fc8``), protocol 3 (Python 3.5, as the authors ran).
"""

import contextlib
import functools
import os
import pickle
import sys
import tarfile
import types

import numpy as np
import tensorflow as tf

WORD_KEY = '/stimuli/word_int'

# metamer_gen_layers of build_word_network_{aliased,reduced_aliasing}.py and build_vgg_trained.py
NULL_KEYS = {
    'word_aliased': ['visualization_input', 'conv_0_jittered_relu', 'conv_1_jittered_relu',
                     'conv_2_jittered_relu', 'conv_3_jittered_relu', 'conv_4_jittered_relu',
                     'fc_intermediate_jittered_relu', 'logits'],
    'word_reduced_aliasing': ['visualization_input', 'pool_0_0', 'pool_1_0', 'conv_2_jittered_relu',
                              'conv_3_jittered_relu', 'conv_4_jittered_relu',
                              'fc_intermediate_jittered_relu', 'logits'],
    'vgg_19': ['conv1_2_jittered_relu', 'conv2_2_jittered_relu', 'conv3_4_jittered_relu',
               'conv4_4_jittered_relu', 'conv5_4_jittered_relu', 'fc6_jittered_relu',
               'fc7_jittered_relu', 'fc8'],
}

# (module, function) that each layer type's callable is pickled as
_FUNCTIONS = {
    'tf.layers.conv2d': ('tensorflow.python.layers.convolutional', 'conv2d'),
    'tf.layers.batch_normalization': ('tensorflow.python.layers.normalization', 'batch_normalization'),
    'tf.layers.dropout': ('tensorflow.python.layers.core', 'dropout'),
    'tf.layers.flatten': ('tensorflow.python.layers.core', 'flatten'),
    'tf.layers.dense': ('tensorflow.python.layers.core', 'dense'),
    'tf.layers.max_pooling2d': ('tensorflow.python.layers.pooling', 'max_pooling2d'),
    'tf.layers.average_pooling2d': ('tensorflow.python.layers.pooling', 'average_pooling2d'),
    'tf.nn.relu': ('tensorflow.python.ops.gen_nn_ops', 'relu'),
    'hpool': ('audio_cnn_helpers', 'hanning_pooling'),
    'multi_fc_top_classification': ('audio_cnn_helpers', 'multi_fc_top_classification'),
}


def _conv(name, filters, kernel, stride):
    return ('tf.layers.conv2d', {'filters': filters, 'kernel_size': kernel, 'padding': 'same',
                                 'strides': stride, 'dilation_rate': [1, 1], 'activation': None,
                                 'name': name})


def _hpool(name, stride, size, normalize):
    return ('hpool', {'strides': stride, 'pool_size': size, 'padding': 'SAME', 'name': name,
                      'normalize': normalize, 'sqrt_window': False})


def word_layers(architecture, bn_names=('batch_norm_0', 'batch_norm_1', 'batch_norm_2'),
                normalize=False, avgpool_padding='same'):
    """``[(layer_type, args)]`` of Table S2 (``'aliased'``) or S3 (``'reduced_aliasing'``)."""
    bn = [('tf.layers.batch_normalization', {'name': n}) for n in bn_names]
    layers = [bn[0]]
    if architecture == 'aliased':
        layers += [_conv('conv_0', 96, [7, 14], 3), ('tf.nn.relu', {'name': 'relu_0'}),
                   ('tf.layers.max_pooling2d', {'pool_size': [2, 5], 'strides': 2,
                                                'padding': 'same', 'name': 'pool_0'}),
                   bn[1], _conv('conv_1', 256, [4, 8], 2), ('tf.nn.relu', {'name': 'relu_1'}),
                   ('tf.layers.max_pooling2d', {'pool_size': [2, 5], 'strides': 2,
                                                'padding': 'same', 'name': 'pool_1'})]
    else:
        layers += [_conv('conv_0', 96, [7, 14], 1), ('tf.nn.relu', {'name': 'relu_0'}),
                   _hpool('pool_0_0', 3, 12, normalize), _hpool('pool_0_1', 2, 8, normalize),
                   bn[1], _conv('conv_1', 256, [4, 8], 1), ('tf.nn.relu', {'name': 'relu_1'}),
                   _hpool('pool_1_0', 2, 8, normalize), _hpool('pool_1_1', 2, 8, normalize)]
    layers += [bn[2], _conv('conv_2', 512, [2, 5], 1), ('tf.nn.relu', {'name': 'relu_2'}),
               _conv('conv_3', 1024, [2, 5], 1), ('tf.nn.relu', {'name': 'relu_3'}),
               _conv('conv_4', 512, [2, 5], 1), ('tf.nn.relu', {'name': 'relu_4'}),
               ('tf.layers.average_pooling2d', {'pool_size': [2, 5], 'strides': [2, 2],
                                                'padding': avgpool_padding, 'name': 'avg_pool'}),
               ('tf.layers.flatten', {'name': 'flatten_end_conv'}),
               ('tf.layers.dense', {'units': 4096, 'activation': None, 'name': 'fc_intermediate'}),
               ('tf.nn.relu', {'name': 'relu_fc_intermediate'}),
               ('tf.layers.dropout', {'rate': 0.5, 'name': 'dropout'}),
               ('multi_fc_top_classification', {'name': 'fc_top'})]
    return layers


@contextlib.contextmanager
def _stand_in_modules():
    """Stand-in functions under the original module paths, for the pickler's by-reference lookup."""
    saved = {}
    functions = {}
    for layer_type, (module, name) in _FUNCTIONS.items():
        if module not in saved:
            saved[module] = sys.modules.get(module)
            sys.modules[module] = types.ModuleType(module)

        def stand_in(*args, **kwargs):
            raise AssertionError('a stand-in of the original TF1 function was called')
        stand_in.__module__, stand_in.__name__, stand_in.__qualname__ = module, name, name
        setattr(sys.modules[module], name, stand_in)
        functions[layer_type] = stand_in
    try:
        yield functions
    finally:
        for module, old in saved.items():
            if old is None:
                del sys.modules[module]
            else:
                sys.modules[module] = old


def write_network_pickle(path, layers, n_classes=None):
    """Write ``{'layer_list': [...partials], 'graph_architecture': [...]}`` as the release does."""
    n_classes = n_classes or {WORD_KEY: 794}
    with _stand_in_modules() as functions:
        layer_list, architecture = [], []
        for layer_type, args in layers:
            extra = {'n_classes_dict': n_classes} if layer_type == 'multi_fc_top_classification' else {}
            layer_list.append(functools.partial(functions[layer_type], **extra, **args))
            architecture.append({'layer_type': layer_type, 'args': dict(args)})
        with open(path, 'wb') as f:
            pickle.dump({'layer_list': layer_list, 'graph_architecture': architecture}, f,
                        protocol=3)
    return path


def word_checkpoint_shapes(architecture, bn_names=('batch_norm_0', 'batch_norm_1', 'batch_norm_2'),
                           avgpool_padding='same', n_word=794):
    """``{TF1 variable: shape}`` of a word network (Tables S2/S3) under ``brain_network/``."""
    flat = 5 * 9 * 512 if avgpool_padding.upper() == 'SAME' else 4 * 7 * 512
    shapes = {}
    for name, channels in zip(bn_names, (1, 96, 256)):
        for var in ('gamma', 'beta', 'moving_mean', 'moving_variance'):
            shapes['brain_network/%s/%s' % (name, var)] = [channels]
    for name, kernel in (('conv_0', [7, 14, 1, 96]), ('conv_1', [4, 8, 96, 256]),
                         ('conv_2', [2, 5, 256, 512]), ('conv_3', [2, 5, 512, 1024]),
                         ('conv_4', [2, 5, 1024, 512]), ('fc_intermediate', [flat, 4096]),
                         ('fc_top_0', [4096, n_word])):
        shapes['brain_network/%s/kernel' % name] = kernel
        shapes['brain_network/%s/bias' % name] = [kernel[-1]]
    return shapes


def write_word_checkpoint(prefix, shapes, seed=0, adam_slots=True, zero_dense=False):
    """A TF V2 checkpoint with ``shapes`` (random values; batch-norm variances positive).

    Adds ``global_step`` and, with ``adam_slots``, the Adam slots of every variable
    (a training checkpoint of the lab's framework holds both). ``zero_dense``:
    zeros in the 23040 x 4096 dense kernel (compresses to almost nothing in a tarball).
    """
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        if zero_dense and name == 'brain_network/fc_intermediate/kernel':
            values[name] = np.zeros(shape, np.float32)
        elif name.endswith(('moving_variance', 'gamma')):
            values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            scale = 1.0 / np.sqrt(max(1, int(np.prod(shape[:-1]))))
            values[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    if adam_slots:
        for name in list(values):
            if name.endswith(('kernel', 'bias', 'gamma', 'beta')) and 'fc_intermediate' not in name:
                values[name + '/Adam'] = np.zeros_like(values[name])
                values[name + '/Adam_1'] = np.zeros_like(values[name])
    values['global_step'] = np.int64(123456)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[''] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return values


def write_null_pickle(path, network, pairs=1000, seed=0, high=0.3):
    """A published-style null: ``{original key: list of rho}`` (max below ``high``)."""
    rng = np.random.default_rng(seed)
    data = {key: list(rng.uniform(-0.1, high, pairs)) for key in NULL_KEYS[network]}
    with open(path, 'wb') as f:
        pickle.dump(data, f, protocol=3)
    return data


def write_audio_tarball(path, members):
    """``metamers_audio_models_network_files.tar.gz`` holding ``{arcname: file path}`` (gzip level 1)."""
    with tarfile.open(path, 'w:gz', compresslevel=1) as tar:
        for arcname, source in members.items():
            tar.add(source, arcname=arcname)
    return path
