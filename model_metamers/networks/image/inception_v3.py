"""Inception-V3 as TF-Slim defines it (``tf_slim.nets.inception_v3``), in Keras, inference mode.

Input ``[batch, 299, 299, 3]`` float32 in [0, 1]; inside the model
``(x - 0.5) * 2``. Every convolution is slim's conv2d + batch norm (beta only,
no gamma, epsilon 0.001, no bias) + ReLU; padding and strides as in
``inception_v3_base``. Dropout inactive. 1001 logits (index 0 = background).
Checkpoint: ``inception_v3.ckpt`` of ``inception_v3_2016_08_28.tar.gz``.

The auxiliary head (``AuxLogits``, from Mixed_6e) is built as a stage by
default so every checkpoint variable has a home; with ``aux_logits=False`` it
is left out and its checkpoint variables are ignored.
"""

import collections

import keras

from model_metamers.networks.image import slim_common

SCOPE = 'InceptionV3'
IMAGE_SIZE = 299
BN = {'epsilon': 0.001, 'scale': False}

# The paper's generation layers (Table S5 order). Slim end point names are used
# as they are. Two of the table's feature counts do not match slim at 299x299
# (Conv2d_2b_3x3, Mixed_7c): see BUILD_NOTES.md, "Image networks".
METAMER_LAYERS = ['Conv2d_1a_3x3', 'Conv2d_2b_3x3', 'Conv2d_3b_1x1', 'Conv2d_4a_3x3',
                  'Mixed_5d', 'Mixed_6e', 'Mixed_7c', 'Logits']

Conv = collections.namedtuple('Conv', 'name filters kernel stride padding')
Pool = collections.namedtuple('Pool', 'name kind size stride padding')
Split = collections.namedtuple('Split', 'convs')  # parallel convs, concatenated


def _c(name, filters, kernel, stride=1, padding='same'):
    return Conv(name, filters, kernel, stride, padding)


_AVG = Pool('AvgPool_0a_3x3', 'avg', 3, 1, 'same')
_MAX_S2 = Pool('MaxPool_1a_3x3', 'max', 3, 2, 'valid')

# Stem: (end point, op) with slim's VALID default in this part.
STEM = [
    ('Conv2d_1a_3x3', _c('Conv2d_1a_3x3', 32, 3, 2, 'valid')),
    ('Conv2d_2a_3x3', _c('Conv2d_2a_3x3', 32, 3, 1, 'valid')),
    ('Conv2d_2b_3x3', _c('Conv2d_2b_3x3', 64, 3, 1, 'same')),
    ('MaxPool_3a_3x3', Pool('MaxPool_3a_3x3', 'max', 3, 2, 'valid')),
    ('Conv2d_3b_1x1', _c('Conv2d_3b_1x1', 80, 1, 1, 'valid')),
    ('Conv2d_4a_3x3', _c('Conv2d_4a_3x3', 192, 3, 1, 'valid')),
    ('MaxPool_5a_3x3', Pool('MaxPool_5a_3x3', 'max', 3, 2, 'valid')),
]


def _block_35(pool_filters, branch_1):
    return [[_c('Conv2d_0a_1x1', 64, 1)],
            branch_1,
            [_c('Conv2d_0a_1x1', 64, 1), _c('Conv2d_0b_3x3', 96, 3), _c('Conv2d_0c_3x3', 96, 3)],
            [_AVG, _c('Conv2d_0b_1x1', pool_filters, 1)]]


def _block_17(c7):
    return [[_c('Conv2d_0a_1x1', 192, 1)],
            [_c('Conv2d_0a_1x1', c7, 1), _c('Conv2d_0b_1x7', c7, (1, 7)),
             _c('Conv2d_0c_7x1', 192, (7, 1))],
            [_c('Conv2d_0a_1x1', c7, 1), _c('Conv2d_0b_7x1', c7, (7, 1)),
             _c('Conv2d_0c_1x7', c7, (1, 7)), _c('Conv2d_0d_7x1', c7, (7, 1)),
             _c('Conv2d_0e_1x7', 192, (1, 7))],
            [_AVG, _c('Conv2d_0b_1x1', 192, 1)]]


def _block_8(second_3x1):
    # slim names the 3x1 conv of Branch_1 'Conv2d_0b_3x1' in Mixed_7b but
    # 'Conv2d_0c_3x1' in Mixed_7c; the checkpoint follows, so do we.
    return [[_c('Conv2d_0a_1x1', 320, 1)],
            [_c('Conv2d_0a_1x1', 384, 1),
             Split([_c('Conv2d_0b_1x3', 384, (1, 3)), _c(second_3x1, 384, (3, 1))])],
            [_c('Conv2d_0a_1x1', 448, 1), _c('Conv2d_0b_3x3', 384, 3),
             Split([_c('Conv2d_0c_1x3', 384, (1, 3)), _c('Conv2d_0d_3x1', 384, (3, 1))])],
            [_AVG, _c('Conv2d_0b_1x1', 192, 1)]]


# Mixed blocks: (end point, [branch, ...]); a branch is a sequence of ops.
MIXED = [
    ('Mixed_5b', _block_35(32, [_c('Conv2d_0a_1x1', 48, 1), _c('Conv2d_0b_5x5', 64, 5)])),
    # Mixed_5c's Branch_1 scope names differ from 5b/5d in slim (kept).
    ('Mixed_5c', _block_35(64, [_c('Conv2d_0b_1x1', 48, 1), _c('Conv_1_0c_5x5', 64, 5)])),
    ('Mixed_5d', _block_35(64, [_c('Conv2d_0a_1x1', 48, 1), _c('Conv2d_0b_5x5', 64, 5)])),
    ('Mixed_6a', [[_c('Conv2d_1a_1x1', 384, 3, 2, 'valid')],
                  [_c('Conv2d_0a_1x1', 64, 1), _c('Conv2d_0b_3x3', 96, 3),
                   _c('Conv2d_1a_1x1', 96, 3, 2, 'valid')],
                  [_MAX_S2]]),
    ('Mixed_6b', _block_17(128)),
    ('Mixed_6c', _block_17(160)),
    ('Mixed_6d', _block_17(160)),
    ('Mixed_6e', _block_17(192)),
    ('Mixed_7a', [[_c('Conv2d_0a_1x1', 192, 1), _c('Conv2d_1a_3x3', 320, 3, 2, 'valid')],
                  [_c('Conv2d_0a_1x1', 192, 1), _c('Conv2d_0b_1x7', 192, (1, 7)),
                   _c('Conv2d_0c_7x1', 192, (7, 1)), _c('Conv2d_1a_3x3', 192, 3, 2, 'valid')],
                  [_MAX_S2]]),
    ('Mixed_7b', _block_8('Conv2d_0b_3x1')),
    ('Mixed_7c', _block_8('Conv2d_0c_3x1')),
]


def _apply(g, net, op, scope):
    if isinstance(op, Conv):
        return g.conv(net, scope + '/' + op.name, op.filters, op.kernel, op.stride, op.padding,
                      batch_norm=BN)
    if isinstance(op, Pool):
        cls = keras.layers.MaxPooling2D if op.kind == 'max' else keras.layers.AveragePooling2D
        return cls(op.size, op.stride, padding=op.padding,
                   name=slim_common.keras_layer_name(scope + '/' + op.name))(net)
    outs = [_apply(g, net, conv, scope) for conv in op.convs]
    return g.concat(outs, scope + '/concat')


def _reduced_kernel(net, size):
    # slim's _reduced_kernel_size_for_small_input
    return (min(net.shape[1], size), min(net.shape[2], size))


def build_inception_v3(weights='random', seed=0, num_classes=1001, aux_logits=True,
                       image_size=IMAGE_SIZE, name='inception_v3', use_ema=False):
    """Build Inception-V3.

    Args:
      weights: ``'random'``, ``'default'``, a TF-Slim checkpoint
        (``inception_v3.ckpt``) or a converted ``*.weights.h5``.
      seed: seed of the random initialisation (slim's initialisers in
        distribution; batch norm at beta 0, mean 0, variance 1).
      num_classes: 1001 for the published checkpoint (background at 0).
      aux_logits: build the auxiliary head (stage ``AuxLogits``).
      image_size: input height and width (299 as trained).
      name: network name.
      use_ema: read each weight from its ``ExponentialMovingAverage`` shadow in a
        checkpoint that has them (default: the plain values).

    Returns a :class:`MetamerNetwork` whose stages are every slim end point
    (``Conv2d_1a_3x3`` ... ``Mixed_7c``, ``AuxLogits``, ``PreLogits``,
    ``Logits``, ``Predictions``), the pre-ReLU tensors
    (``InceptionV3/<scope>/pre_relu``), ``input`` and ``preprocessed``.
    A Mixed block made only of ReLU branches maps in ``relu_stages`` to the
    final pre-ReLU tensor of every branch, in concat order.
    """
    g = slim_common.SlimGraphBuilder(seed=seed, random_init=slim_common.needs_random_init(weights),
                                     initializer='he')
    image = keras.Input((image_size, image_size, 3), name='image')
    g.add_stage('input', image)
    net = slim_common.ScaleShift(subtract=0.5, multiply=2.0, name='preprocess')(image)
    g.add_stage('preprocessed', net)
    for end_point, op in STEM:
        net = g.add_stage(end_point, _apply(g, net, op, SCOPE))
    for end_point, branches in MIXED:
        scope = '%s/%s' % (SCOPE, end_point)
        outs = []
        for b, branch in enumerate(branches):
            x = net
            for op in branch:
                x = _apply(g, x, op, '%s/Branch_%d' % (scope, b))
            outs.append(x)
        net = g.add_stage(end_point, g.concat(outs, scope + '/concat'))

    ignore = ()
    if aux_logits:
        scope = SCOPE + '/AuxLogits'
        aux = keras.layers.AveragePooling2D(5, 3, padding='valid',
                                            name=slim_common.keras_layer_name(
                                                scope + '/AvgPool_1a_5x5'))(g.stages['Mixed_6e'])
        aux = g.conv(aux, scope + '/Conv2d_1b_1x1', 128, 1, batch_norm=BN)
        k = _reduced_kernel(aux, 5)
        aux = g.conv(aux, scope + '/Conv2d_2a_%dx%d' % k, 768, k, padding='valid',
                     batch_norm=BN, stddev=0.01)
        aux = g.conv(aux, scope + '/Conv2d_2b_1x1', num_classes, 1, activation=False, stddev=0.001)
        g.add_stage('AuxLogits', slim_common.SpatialSqueeze(
            name=slim_common.keras_layer_name(scope + '/SpatialSqueeze'))(aux))
    else:
        ignore = (SCOPE + '/AuxLogits',)

    scope = SCOPE + '/Logits'
    k = _reduced_kernel(net, 8)
    net = keras.layers.AveragePooling2D(k, padding='valid', name=slim_common.keras_layer_name(
        scope + '/AvgPool_1a_%dx%d' % k))(net)
    net = g.add_stage('PreLogits', net)
    net = g.conv(net, scope + '/Conv2d_1c_1x1', num_classes, 1, activation=False)
    logits = g.add_stage('Logits', slim_common.SpatialSqueeze(
        name=slim_common.keras_layer_name(scope + '/SpatialSqueeze'))(net))
    g.add_stage('Predictions', keras.layers.Softmax(name='InceptionV3.Predictions')(logits))

    class_names, offset = slim_common.class_names_for(num_classes)
    return slim_common.build_and_load(
        name, image, g, METAMER_LAYERS, class_names, weights, SCOPE,
        aliases={'logits': 'Logits', 'visualization_input': 'input'}, logits_stage='Logits',
        info={'build_options': {'num_classes': num_classes, 'aux_logits': bool(aux_logits),
                                'image_size': image_size},
              'logit_offset': offset, 'num_classes': num_classes, 'slim_scope': SCOPE,
              'aux_logits': bool(aux_logits), 'checkpoint_map': dict(g.name_map),
              'preprocessing': '(x - 0.5) * 2'},
        default_checkpoint='inception_v3.ckpt', ignore_scopes=ignore, use_ema=use_ema)
