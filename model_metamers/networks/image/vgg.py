"""VGG-19 as TF-Slim defines it (``tf_slim.nets.vgg.vgg_19``), in Keras, inference mode.

Input ``[batch, 224, 224, 3]`` float32 in [0, 1]; inside the model
``x*255 - [123.68, 116.779, 103.939]`` (the original's VGG preprocessing).
Convolutions 3x3 SAME with biases and ReLU, 2x2/2 VALID max-pools, fully
connected layers as convolutions (fc6 7x7 VALID), dropout inactive, fc8
spatially squeezed to ``[batch, 1000]``. Checkpoint: ``vgg_19.ckpt`` of
``vgg_19_2016_08_28.tar.gz`` (1000 classes, no background class).
"""

import keras

from model_metamers.networks.image import slim_common

SCOPE = 'vgg_19'
IMAGE_SIZE = 224
MEANS = (123.68, 116.779, 103.939)
# conv blocks: (block number, convolutions, channels)
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
# The paper's generation layers (Table S5) -> slim end points.
PAPER_LAYERS = {
    'conv1_2': 'vgg_19/conv1/conv1_2',
    'conv2_2': 'vgg_19/conv2/conv2_2',
    'conv3_4': 'vgg_19/conv3/conv3_4',
    'conv4_4': 'vgg_19/conv4/conv4_4',
    'conv5_4': 'vgg_19/conv5/conv5_4',
    'fc6': 'vgg_19/fc6',
    'fc7': 'vgg_19/fc7',
    'fc8': 'vgg_19/fc8',
}
METAMER_LAYERS = list(PAPER_LAYERS)


def build_vgg_19(weights='random', seed=0, num_classes=1000, name='vgg_19', use_ema=False):
    """Build VGG-19.

    Args:
      weights: ``'random'``, ``'default'``, a TF-Slim checkpoint (``vgg_19.ckpt``)
        or a converted ``*.weights.h5``.
      seed: seed of the random initialisation (slim's Xavier-uniform weights,
        zero biases; same distribution as slim, not the same numbers).
      num_classes: logits of fc8 (1000 for the published checkpoint).
      name: network name.
      use_ema: read each weight from its ``ExponentialMovingAverage`` shadow in a
        checkpoint that has them (default: the plain values).

    Returns a :class:`MetamerNetwork` whose stages are every slim end point
    (``vgg_19/conv1/conv1_1`` ... ``vgg_19/fc8``), the pre-ReLU tensors
    (``<end point>/pre_relu``), ``input`` and ``preprocessed``; the paper's names
    (``conv1_2`` ... ``fc8``) are aliases.
    """
    g = slim_common.SlimGraphBuilder(seed=seed, random_init=slim_common.needs_random_init(weights),
                                     initializer='xavier')
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name='image')
    g.add_stage('input', image)
    net = slim_common.ScaleShift(multiply=255.0, means=MEANS, name='preprocess')(image)
    g.add_stage('preprocessed', net)
    for block, n_conv, channels in BLOCKS:
        for i in range(1, n_conv + 1):
            scope = '%s/conv%d/conv%d_%d' % (SCOPE, block, block, i)
            net = g.add_stage(scope, g.conv(net, scope, channels, 3))
        scope = '%s/pool%d' % (SCOPE, block)
        net = keras.layers.MaxPooling2D(2, 2, padding='valid',
                                        name=slim_common.keras_layer_name(scope))(net)
        g.add_stage(scope, net)
    net = g.add_stage(SCOPE + '/fc6', g.conv(net, SCOPE + '/fc6', 4096, 7, padding='valid'))
    net = g.add_stage(SCOPE + '/fc7', g.conv(net, SCOPE + '/fc7', 4096, 1))
    net = g.conv(net, SCOPE + '/fc8', num_classes, 1, activation=False)
    g.add_stage(SCOPE + '/fc8/unsqueezed', net)
    g.add_stage(SCOPE + '/fc8', slim_common.SpatialSqueeze(name='vgg_19.fc8.squeezed')(net))

    class_names, offset = slim_common.class_names_for(num_classes)
    return slim_common.build_and_load(
        name, image, g, METAMER_LAYERS, class_names, weights, SCOPE,
        aliases=dict(PAPER_LAYERS, logits=SCOPE + '/fc8', visualization_input='input'),
        logits_stage=SCOPE + '/fc8',
        info={'build_options': {'num_classes': num_classes},
              'logit_offset': offset, 'num_classes': num_classes, 'slim_scope': SCOPE,
              'checkpoint_map': dict(g.name_map), 'preprocessing': 'x*255 - %s' % (MEANS,)},
        default_checkpoint='vgg_19.ckpt', use_ema=use_ema)
