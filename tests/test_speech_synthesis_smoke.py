"""Slow sanity check of VGGish and DeepSpeech for synthesis: a few Adam steps on the waveform
from noise lower the matching loss (gradients through resampling, front end, LSTM are usable)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.io import wavfile

from model_metamers import resources
from model_metamers.networks import build


def _demo_sound():
    sr, x = wavfile.read(resources.DEMO_SOUND)
    x = x.astype(np.float64) - x.mean()
    return (0.1 * x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize('network,layer', [('deepspeech', 'logits'), ('deepspeech', 'layer_3'),
                                           ('vggish', 'embedding'), ('vggish', 'conv2')])
def test_few_adam_steps_from_noise_reduce_the_loss(network, layer):
    net = build(network, weights='random', seed=0)
    target_x = _demo_sound()[None]
    names = net.stages_for_matching(layer)
    model = net.submodel(names)
    target = tf.stop_gradient(net.matched_tensor(model(target_x), layer))
    rng = np.random.default_rng(0)
    xv = tf.Variable(0.01 * rng.standard_normal(target_x.shape).astype(np.float32))
    opt = tf.keras.optimizers.Adam(learning_rate=net.default_learning_rate, epsilon=1e-8)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.nn.l2_loss(target - net.matched_tensor(model(xv), layer))
        grad = tape.gradient(loss, xv)
        opt.apply_gradients([(grad, xv)])
        return loss, tf.reduce_all(tf.math.is_finite(grad))

    losses = []
    for _ in range(20):
        loss, finite = step()
        assert bool(finite)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
