"""ResNet-101-V2 as TF-Slim defines it (``tf_slim.nets.resnet_v2.resnet_v2_101``), in Keras.

Inference mode, ``global_pool=True``, ``output_stride=None``. Input
``[batch, 299, 299, 3]`` float32 in [0, 1]; inside the model ``(x - 0.5) * 2``.
Pre-activation bottleneck units (batch norm + ReLU before the convolutions),
the stride of each block in its last unit, ``conv2d_same`` (explicit
symmetric zero padding before strided convolutions), a final ``postnorm`` and
a spatial mean (``global_pool``). 1001 logits (index 0 = background).
Checkpoint: ``resnet_v2_101.ckpt`` of ``resnet_v2_101_2017_04_14.tar.gz``.

Batch-norm epsilon: slim asks for 1e-5, but TF1's ``fused_batch_norm`` (which
slim uses for 4-D inputs) raised any epsilon below 1.001e-5 to 1.001e-5 (a
cuDNN requirement), so the published network ran with 1.001e-5; that is the
default here (``bn_epsilon``).
"""

import keras

from model_metamers.networks.image import slim_common

SCOPE = 'resnet_v2_101'
IMAGE_SIZE = 299
TF1_FUSED_MIN_EPSILON = 1.001e-5
# (block scope, bottleneck depth, units, stride of the last unit)
BLOCKS = (('block1', 64, 3, 2), ('block2', 128, 4, 2), ('block3', 256, 23, 2),
          ('block4', 512, 3, 1))
PAPER_LAYERS = {
    'conv_1': SCOPE + '/conv1',
    'block_1': SCOPE + '/block1',
    'block_2': SCOPE + '/block2',
    'block_3': SCOPE + '/block3',
    'block_4': SCOPE + '/block4',
    'global': 'global_pool',
    'logits': 'logits',
}
METAMER_LAYERS = list(PAPER_LAYERS)


def _conv2d_same(g, net, scope, filters, kernel, stride, **kw):
    """slim ``resnet_utils.conv2d_same``: SAME for stride 1, else explicit padding + VALID."""
    if stride == 1:
        return g.conv(net, scope, filters, kernel, 1, 'same', **kw)
    pad_total = kernel - 1
    pad = (pad_total // 2, pad_total - pad_total // 2)
    net = keras.layers.ZeroPadding2D((pad, pad),
                                     name=slim_common.keras_layer_name(scope) + '.Pad')(net)
    return g.conv(net, scope, filters, kernel, stride, 'valid', **kw)


def _bottleneck(g, net, scope, depth, depth_bottleneck, stride, bn):
    depth_in = net.shape[-1]
    preact = g.batch_norm(net, scope + '/preact', activation=True, **bn)
    g.add_stage(scope + '/preact', preact)
    if depth == depth_in:
        shortcut = net
        if stride > 1:
            # slim's subsample: a 1x1 max-pool with the stride
            shortcut = keras.layers.MaxPooling2D(1, stride, padding='same', name=(
                slim_common.keras_layer_name(scope) + '.shortcut'))(net)
    else:
        shortcut = g.conv(preact, scope + '/shortcut', depth, 1, stride, activation=False)
        g.add_stage(scope + '/shortcut', shortcut)
    residual = g.conv(preact, scope + '/conv1', depth_bottleneck, 1, batch_norm=bn)
    g.add_stage(scope + '/conv1', residual)
    residual = _conv2d_same(g, residual, scope + '/conv2', depth_bottleneck, 3, stride,
                            batch_norm=bn)
    g.add_stage(scope + '/conv2', residual)
    residual = g.conv(residual, scope + '/conv3', depth, 1, activation=False)
    g.add_stage(scope + '/conv3', residual)
    out = keras.layers.Add(name=slim_common.keras_layer_name(scope) + '.add')([shortcut, residual])
    return g.add_stage(scope, out)


def build_resnet_v2_101(weights='random', seed=0, num_classes=1001, bn_epsilon=TF1_FUSED_MIN_EPSILON,
                        image_size=IMAGE_SIZE, name='resnet_v2_101', use_ema=False):
    """Build ResNet-101-V2.

    Args:
      weights: ``'random'``, ``'default'``, a TF-Slim checkpoint
        (``resnet_v2_101.ckpt``) or a converted ``*.weights.h5``.
      seed: seed of the random initialisation (slim's initialisers in
        distribution; batch norm at gamma 1, beta 0, mean 0, variance 1).
      num_classes: 1001 for the published checkpoint (background at 0).
      bn_epsilon: batch-norm epsilon (1.001e-5: what TF1 ran; 1e-5: slim's value).
      image_size: input height and width (299 as used in the paper).
      name: network name.
      use_ema: read each weight from its ``ExponentialMovingAverage`` shadow in a
        checkpoint that has them (default: the plain values).

    Returns a :class:`MetamerNetwork` whose stages are every slim end point
    (``resnet_v2_101/conv1``, ``.../blockN/unit_K/bottleneck_v2[/conv1|conv2|
    conv3|shortcut]``, ``resnet_v2_101/blockN``, ``resnet_v2_101/logits``
    ``[b,1,1,C]``, ``predictions``) plus ``resnet_v2_101/pool1``, the
    ``preact``/``postnorm`` outputs, ``global_pool`` ``[b,1,1,2048]``, the
    squeezed ``logits`` ``[b,C]``, pre-ReLU tensors, ``input`` and ``preprocessed``;
    the paper's names (``conv_1``, ``block_1`` ... ``global``) are aliases.
    """
    bn = {'epsilon': float(bn_epsilon), 'scale': True}
    g = slim_common.SlimGraphBuilder(seed=seed, random_init=slim_common.needs_random_init(weights),
                                     initializer='he')
    image = keras.Input((image_size, image_size, 3), name='image')
    g.add_stage('input', image)
    net = slim_common.ScaleShift(subtract=0.5, multiply=2.0, name='preprocess')(image)
    g.add_stage('preprocessed', net)
    net = _conv2d_same(g, net, SCOPE + '/conv1', 64, 7, 2, activation=False)
    g.add_stage(SCOPE + '/conv1', net)
    net = keras.layers.MaxPooling2D(3, 2, padding='same', name=SCOPE + '.pool1')(net)
    g.add_stage(SCOPE + '/pool1', net)
    for block, depth_bottleneck, units, stride in BLOCKS:
        for unit in range(1, units + 1):
            net = _bottleneck(g, net, '%s/%s/unit_%d/bottleneck_v2' % (SCOPE, block, unit),
                              depth_bottleneck * 4, depth_bottleneck,
                              stride if unit == units else 1, bn)
        g.add_stage('%s/%s' % (SCOPE, block), net)
    net = g.batch_norm(net, SCOPE + '/postnorm', activation=True, **bn)
    g.add_stage(SCOPE + '/postnorm', net)
    net = g.add_stage('global_pool', slim_common.SpatialMean(name=SCOPE + '.pool5')(net))
    net = g.conv(net, SCOPE + '/logits', num_classes, 1, activation=False)
    g.add_stage(SCOPE + '/logits', net)
    g.add_stage('predictions', keras.layers.Softmax(name=SCOPE + '.predictions')(net))
    g.add_stage('logits', slim_common.SpatialSqueeze(name=SCOPE + '.logits.squeezed')(net))

    class_names, offset = slim_common.class_names_for(num_classes)
    return slim_common.build_and_load(
        name, image, g, METAMER_LAYERS, class_names, weights, SCOPE,
        aliases=dict({k: v for k, v in PAPER_LAYERS.items() if k != v}, visualization_input='input'),
        logits_stage='logits',
        info={'build_options': {'num_classes': num_classes, 'bn_epsilon': float(bn_epsilon),
                                'image_size': image_size},
              'logit_offset': offset, 'num_classes': num_classes, 'slim_scope': SCOPE,
              'bn_epsilon': float(bn_epsilon), 'checkpoint_map': dict(g.name_map),
              'preprocessing': '(x - 0.5) * 2'},
        default_checkpoint='resnet_v2_101.ckpt', use_ema=use_ema)
