"""Metamers of your own network (issue 21): any Keras model, from the CLI and the API.

The models are built here with plain Keras; what the wrapped network must compute is
stated independently of the wrapper (the layer's own output, a convolution done with
``tf.nn.conv2d`` from the saved kernel, hashlib's SHA-1 of the file).
"""

import hashlib
import inspect
import os
import re
import subprocess
import sys
import textwrap

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.networks import MetamerNetwork, custom
from tests.conftest import REPO


def tiny_cnn(name='tiny', seed=0):
    """Conv(relu) -> Conv -> ReLU layer -> pool -> nested block -> Dense(tanh) -> logits."""
    keras.utils.set_random_seed(seed)
    pixels = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding='same', activation='relu', name='conv1')(pixels)
    x = keras.layers.Conv2D(8, 3, padding='same', name='conv2')(x)
    x = keras.layers.ReLU(name='relu2')(x)
    x = keras.layers.MaxPooling2D(name='pool')(x)
    inner = keras.Input((16, 16, 8))
    y = keras.layers.Conv2D(8, 3, padding='same', activation='relu', name='conv1')(inner)  # same name
    x = keras.Model(inner, y, name='block')(x)
    x = keras.layers.Flatten(name='flat')(x)
    x = keras.layers.Dense(16, activation='tanh', name='fc')(x)
    x = keras.layers.Dense(4, name='logits')(x)
    return keras.Model(pixels, x, name=name)


@pytest.fixture(scope='module')
def model():
    return tiny_cnn()


@pytest.fixture(scope='module')
def net(model):
    return MetamerNetwork.from_keras(model)


def _image(seed=0):
    return np.random.RandomState(seed).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)


def test_stages_are_the_layer_outputs_and_nested_layers_are_flattened(net, model):
    assert net.modality == 'image' and net.input_shape == (32, 32, 3)
    for name in ('conv1', 'conv2', 'relu2', 'pool', 'block/conv1', 'fc', 'logits'):
        assert name in net.stages
    assert net.resolve('block') == 'block/conv1'  # the nested model's output
    # Default metamer layers: every activation output, in network order.
    assert net.metamer_layers == ['conv1', 'relu2', 'block/conv1', 'fc']
    x = _image()
    np.testing.assert_allclose(net.logits(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    probe = keras.Model(model.input, [model.get_layer('relu2').output, model.get_layer('fc').output])
    relu2, fc = probe(x)
    got = net.activations(x, ['relu2', 'fc'])
    np.testing.assert_allclose(got['relu2'].numpy(), relu2.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got['fc'].numpy(), fc.numpy(), rtol=1e-5, atol=1e-6)
    assert net.class_names == ['class_0', 'class_1', 'class_2', 'class_3']


def test_a_relu_activation_is_split_into_preactivation_and_relu(net, model):
    x = _image(1)
    kernel, bias = model.get_layer('conv1').get_weights()
    pre = tf.nn.conv2d(x, kernel, 1, 'SAME').numpy() + bias  # the convolution, written out
    got = net.activations(x, ['conv1/preactivation', 'conv1'])
    np.testing.assert_allclose(got['conv1/preactivation'].numpy(), pre, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got['conv1'].numpy(), np.maximum(pre, 0), rtol=1e-4, atol=1e-5)
    assert net.relu_stages['conv1'] == ['conv1/preactivation']
    assert net.relu_stages['relu2'] == ['conv2']  # a ReLU layer: its input is the pre-activation
    assert 'fc' not in net.relu_stages            # tanh is matched as it is


@pytest.mark.parametrize('layer', ['conv1', 'relu2', 'block/conv1'])
def test_the_modified_relu_is_applied_at_relu_stages(net, layer):
    """Matched through the modified ReLU, d(matched)/d(pre-activation) is 1 everywhere, also
    where the pre-activation is negative (the ordinary ReLU gives 0 there)."""
    x = _image(2)
    outputs = net.submodel(net.stages_for_matching(layer))(x)
    pre = tf.Variable(outputs[net.relu_stages[layer][0]])
    for modified, expected_below_zero in ((True, 1.0), (False, 0.0)):
        with tf.GradientTape() as tape:
            matched = net.matched_tensor({net.relu_stages[layer][0]: pre, layer: tf.nn.relu(pre)},
                                         layer, modified_relu=modified)
            total = tf.reduce_sum(matched)
        grad = tape.gradient(total, pre).numpy()
        negative = pre.numpy() < 0
        assert negative.any()
        np.testing.assert_array_equal(grad[negative], expected_below_zero)
        np.testing.assert_allclose(matched.numpy(), np.maximum(pre.numpy(), 0))
    assert net.matching(layer).startswith('modified ReLU of ')
    assert net.matching('fc') == 'layer output as is (activation tanh: no modified-gradient form)'


def test_layer_names_and_errors_in_one_line(net):
    with pytest.raises(UserError, match="has no layer 'conv9'"):
        net.resolve('conv9')
    with pytest.raises(UserError, match='2 inputs'):
        a, b = keras.Input((4,)), keras.Input((4,))
        MetamerNetwork.from_keras(keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()([a, b]))))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(UserError, match='subclassed keras.Model.*functional API'):
        MetamerNetwork.from_keras(Subclassed())
    free = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation='relu', name='c')(free))
    free_model = keras.Model(free, keras.layers.Dense(2)(pooled))
    with pytest.raises(UserError, match=r'no fixed input shape \(\[None, None, 3\]\).*--input_shape'):
        MetamerNetwork.from_keras(free_model)
    fixed = MetamerNetwork.from_keras(free_model, input_shape=(24, 24, 3))
    assert fixed.input_shape == (24, 24, 3) and fixed.metamer_layers == ['c']
    waveform = keras.Input((800,))
    wave_model = keras.Model(waveform, keras.layers.Dense(3)(waveform))
    with pytest.raises(UserError, match='--sample_rate'):
        MetamerNetwork.from_keras(wave_model)
    assert MetamerNetwork.from_keras(wave_model, sample_rate=8000).sample_rate == 8000
    with pytest.raises(UserError, match='3 class names for 4 logits'):
        MetamerNetwork.from_keras(tiny_cnn(), class_names=['a', 'b', 'c'])
    with pytest.raises(UserError, match='cannot tell whether'):
        odd = keras.Input((5, 7))
        MetamerNetwork.from_keras(keras.Model(odd, keras.layers.Dense(2)(keras.layers.Flatten()(odd))))


def rounding_model():
    pixels = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation='relu', name='conv1')(pixels)
    x = keras.layers.Lambda(tf.round, name='quantise')(x)
    x = keras.layers.Conv2D(4, 3, activation='relu', name='conv2')(x)
    return keras.Model(pixels, keras.layers.Dense(3)(keras.layers.Flatten()(x)))


def test_a_layer_the_gradient_cannot_pass_is_named():
    from model_metamers.synthesis import MetamerSynthesizer

    net = MetamerNetwork.from_keras(rounding_model())
    natural = np.random.RandomState(0).uniform(0, 1, (16, 16, 3)).astype(np.float32)
    with pytest.raises(UserError, match=r"layer 'conv2'.*stage 'quantise' is not differentiable"):
        MetamerSynthesizer(net, natural, 'conv2')
    MetamerSynthesizer(net, natural, 'conv1')  # before the rounding: fine


def test_cochleagram_front_end_makes_waveform_metamers():
    import tfcochleagram
    from model_metamers.networks.audio import kws

    coch = keras.Input((52, 100, 1))
    x = keras.layers.Conv2D(4, 3, padding='same', activation='relu', name='conv1')(coch)
    model = keras.Model(coch, keras.layers.Dense(3, name='logits')(keras.layers.Flatten()(x)))
    net = MetamerNetwork.from_keras(model, front_end='kws')
    assert (net.modality, net.sample_rate, net.input_shape) == ('audio', 16000, (16000,))
    assert net.representation_stage == 'cochleagram'
    wave = np.random.RandomState(0).randn(1, 16000).astype(np.float32) * 0.1
    expected = tfcochleagram.cochleagram(tf.constant(wave), 16000, **kws.COCHLEAGRAM_CONFIG)
    np.testing.assert_allclose(net.activations(wave, ['cochleagram'])['cochleagram'].numpy(),
                               expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match=r'makes cochleagrams of shape \[211, 100, 1\]'):
        MetamerNetwork.from_keras(model, front_end='word')


def test_a_saved_model_with_our_cochleagram_layer_loads(tmp_path):
    import tfcochleagram

    wave = keras.Input((16000,))
    coch = tfcochleagram.Cochleagram(16000, name='cochleagram', **dict(tfcochleagram.WORD_CONFIG))(wave)
    x = keras.layers.Conv2D(2, 3, activation='relu', name='conv1')(coch)
    path = str(tmp_path / 'coch_net.keras')
    keras.Model(wave, keras.layers.Dense(2)(keras.layers.Flatten()(x))).save(path)
    net, label, sha1 = custom.load(path)
    assert (net.modality, net.sample_rate, net.representation_stage) == ('audio', 16000, 'cochleagram')
    assert label == path and sha1 == hashlib.sha1(open(path, 'rb').read()).hexdigest()


def test_keras_applications_example_of_the_readme_runs(tmp_path, monkeypatch):
    """The README's ResNet50 block, untrained (no download here) and for 2 iterations."""
    readme = open(os.path.join(REPO, 'README.md'), encoding='utf-8').read()
    block = re.search(r'<!-- own-network example[^\n]*\n```python\n(.*?)```', readme, re.S).group(1)
    assert "WEIGHTS = 'imagenet'" in block and 'iterations=15000' in block
    block = block.replace("WEIGHTS = 'imagenet'", 'WEIGHTS = None').replace(
        'iterations=15000', 'iterations=2, log_every=1, figures=False, layers=["resnet50/conv2_block3_out"]')
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, 'README own-network example', 'exec'), namespace)  # noqa: S102
    net, rows, model = namespace['net'], namespace['rows'], namespace['model']
    assert len(net.class_names) == 1000 and net.class_names[0].startswith('tench')
    assert net.metamer_layers == ['resnet50/conv2_block3_out', 'resnet50/conv4_block6_out']
    assert net.relu_stages['resnet50/conv1_relu'] == ['resnet50/conv1_bn']  # an Activation('relu')
    x = np.random.RandomState(0).uniform(0, 1, (1, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(net.logits(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)
    assert [r['layer'] for r in rows] == ['resnet50/conv2_block3_out']
    assert os.path.exists(tmp_path / 'metamers_out' / 'resnet50' / 'airplane.h5')


def test_generate_records_the_weights_of_a_network_given_to_it_built(tmp_path):
    """generate(settings, network=...) with a network built in a notebook: a user's own model is
    recorded by its name and a SHA-1 of its weight values (a retrained model is not mistaken for
    the old one); a registered network by the weights argument and the SHA-1 of that file."""
    from model_metamers.generation import GenerationSettings, generate
    from tests import toy_networks

    picture = os.path.join(REPO, 'model_metamers', 'data', 'airplane.png')

    def attrs_of(net, folder, layer, inputs=(picture,), **kw):
        generate(GenerationSettings(inputs=list(inputs), layers=[layer], iterations=2, log_every=1,
                                    output_dir=str(tmp_path / folder), progress=False, figures=False, **kw),
                 network=net)
        stem = os.path.splitext(os.path.basename(inputs[0]))[0]
        with h5py.File(str(tmp_path / folder / net.name / (stem + '.h5')), 'r') as f:
            return dict(f[layer].attrs)

    first = attrs_of(MetamerNetwork.from_keras(tiny_cnn(seed=0), layers=['relu2']), 'a', 'relu2')
    same = attrs_of(MetamerNetwork.from_keras(tiny_cnn(seed=0), layers=['relu2']), 'b', 'relu2')
    retrained = attrs_of(MetamerNetwork.from_keras(tiny_cnn(seed=1), layers=['relu2']), 'c', 'relu2')
    assert first['weights'] == same['weights'] == retrained['weights'] == 'tiny'  # the Keras model's name
    assert re.fullmatch('[0-9a-f]{40}', first['weights_sha1'])
    assert first['weights_sha1'] == same['weights_sha1'] != retrained['weights_sha1']
    # A model file loaded in the notebook: recorded by the file it came from and that file's SHA-1.
    path = tmp_path / 'tiny_cnn.keras'
    tiny_cnn(seed=0).save(str(path))
    loaded, _, _ = custom.load(str(path))
    from_file = attrs_of(loaded, 'f', 'relu2')
    assert from_file['weights'] == str(path)
    assert from_file['weights_sha1'] == hashlib.sha1(path.read_bytes()).hexdigest()

    toy = toy_networks.build_toy_audio()
    weights = str(tmp_path / 'toy.weights.h5')
    toy.model.save_weights(weights)
    sound = toy_networks.write_toy_sounds(tmp_path, 1, 0, 'noise')
    saved = attrs_of(toy, 'd', 'relu1', network='toy_audio', weights=weights, inputs=sound)
    with open(weights, 'rb') as f:  # the SHA-1 of each weight file's name and then its bytes
        assert saved['weights'] == weights
        assert saved['weights_sha1'] == hashlib.sha1(b'toy.weights.h5' + f.read()).hexdigest()
    drawn = attrs_of(toy, 'e', 'relu1', network='toy_audio', weights='random', inputs=sound)
    assert drawn['weights'] == drawn['weights_sha1'] == 'random'


def test_generation_passes_the_front_end_and_modality_of_a_model_file(tmp_path):
    """--front_end / --modality (GenerationSettings) reach the loading of a user's model file: a
    model that takes kws cochleagrams makes waveform metamers; called an image model, it is refused."""
    from model_metamers.generation import GenerationSettings, generate

    coch = keras.Input((52, 100, 1))
    x = keras.layers.Conv2D(4, 3, padding='same', activation='relu', name='conv1')(coch)
    path = str(tmp_path / 'coch_model.keras')
    keras.Model(coch, keras.layers.Dense(3, name='logits')(keras.layers.Flatten()(x))).save(path)
    sound = os.path.join(REPO, 'model_metamers', 'data', 'demo_keyword_yes.wav')

    def settings(**kw):
        return GenerationSettings(network=path, inputs=[sound], layers=['conv1'], iterations=2, log_every=1,
                                  output_dir=str(tmp_path / 'out'), progress=False, figures=False,
                                  null_distribution='none', **kw)

    generate(settings(front_end='kws', modality='audio'), log=lambda line: None)
    with h5py.File(str(tmp_path / 'out' / 'coch_model' / 'demo_keyword_yes.h5'), 'r') as f:
        assert f['conv1']['metamer'].shape == (16000,)  # a waveform at the front end's 16 kHz
    with pytest.raises(UserError, match='image models must take square RGB images'):
        generate(settings(front_end='kws', modality='image'), log=lambda line: None)


# ------------------------------------------------------------------ the command line
def _cli(args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH='')
    return subprocess.run([sys.executable, os.path.join(REPO, 'run_generation.py')] + args,
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=900)


def test_a_saved_model_from_the_cli(tmp_path):
    path = tmp_path / 'tiny_cnn.keras'
    tiny_cnn().save(str(path))
    (tmp_path / 'classes.json').write_text('["cat", "dog", "owl", "elk"]')
    args = ['--network=tiny_cnn.keras', '--layer=conv1,fc', '--iterations=60', '--log_every=20',
            '--output_dir=out', '--figures=false', '--class_names=classes.json']
    run = _cli(args, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = tmp_path / 'out' / 'tiny_cnn'
    assert str(folder) in run.stdout
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
    with h5py.File(str(folder / 'airplane.h5'), 'r') as f:
        assert f.attrs['network'] == 'tiny_cnn' and sorted(f) == ['conv1', 'fc']
        for layer in ('conv1', 'fc'):
            g = f[layer]
            loss = g['loss'][()]
            assert loss[-1] < loss[0]  # the matching loss falls
            assert g['metamer'].shape == (32, 32, 3) and int(g.attrs['iterations']) == 60
            assert g.attrs['weights_sha1'] == sha1 and g.attrs['weights'] == 'tiny_cnn.keras'
            assert g.attrs['natural_class_name'] in ('cat', 'dog', 'owl', 'elk')
            for name in ('spearman_matched', 'same_class', 'passed', 'criterion', 'seed', 'procedure'):
                assert name in g.attrs
        assert f['conv1'].attrs['matched_as'].startswith('modified ReLU of conv1/preactivation')
        assert f['fc'].attrs['matched_as'].startswith('layer output as is (activation tanh')
    assert (folder / 'airplane_conv1.png').exists() and (folder / 'airplane_natural.png').exists()
    again = _cli(args, tmp_path)  # the same model file: finished work is reused
    assert again.returncode == 0 and 'skipped' in again.stdout + again.stderr, again.stdout
    tiny_cnn(seed=1).save(str(path))  # retrained in place: other weights, same path
    changed = _cli(args, tmp_path)
    assert changed.returncode == 0 and 'skipped' not in changed.stdout + changed.stderr
    with h5py.File(str(folder / 'airplane.h5'), 'r') as f:
        assert f['fc'].attrs['weights_sha1'] == hashlib.sha1(path.read_bytes()).hexdigest() != sha1
    listing = _cli(['--network=tiny_cnn.keras', '--list_layers'], tmp_path)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ['conv1', 'relu2', 'block/conv1', 'fc']
    assert lines[4].startswith('all stages: conv1/preactivation, conv1, conv2, relu2, pool')


def test_module_function_form_and_one_line_errors(tmp_path):
    (tmp_path / 'mymodels.py').write_text(textwrap.dedent('''
        import keras
        import tensorflow as tf

        def waveform_cnn():
            wave = keras.Input((4000,))
            x = keras.layers.Reshape((4000, 1))(wave)
            x = keras.layers.Conv1D(4, 32, strides=8, activation='relu', name='conv1')(x)
            x = keras.layers.GlobalAveragePooling1D()(x)
            return keras.Model(wave, keras.layers.Dense(3, name='logits')(x))
    ''') + '\n\n' + inspect.getsource(rounding_model).replace('rounding_model', 'rounding'))
    run = _cli(['--network=mymodels:waveform_cnn', '--sample_rate=8000', '--iterations=40',
                '--log_every=20', '--output_dir=out', '--figures=false'], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    with h5py.File(str(tmp_path / 'out' / 'waveform_cnn' / 'human_audio_resampled.h5'), 'r') as f:
        g = f['conv1']
        assert g['metamer'].shape == (4000,) and g['loss'][-1] < g['loss'][0]
        assert g.attrs['weights'] == 'mymodels:waveform_cnn' and len(g.attrs['weights_sha1']) == 40
    for args, message in (
            (['--network=mymodels:waveform_cnn'], '--sample_rate'),
            (['--network=mymodels:rounding', '--layer=conv2'], "stage 'quantise' is not differentiable"),
            (['--network=mymodels:rounding', '--layer=conv7'], "has no layer 'conv7'"),
            (['--network=mymodels:nothing'], "has no function 'nothing'"),
            (['--network=missing.keras'], 'no model file missing.keras'),
            (['--network=vgg_19', '--sample_rate=8000'], '--sample_rate apply to your own model')):
        bad = _cli(args + ['--iterations=2', '--output_dir=out'], tmp_path)
        assert bad.returncode == 1, (args, bad.stderr[-2000:])
        lines = bad.stderr.strip().splitlines()
        assert lines[-1].startswith('error: ') and message in lines[-1], (args, bad.stderr[-2000:])
        assert 'Traceback' not in bad.stderr


def test_null_distribution_of_your_own_model_is_found_beside_it(tmp_path):
    """null_distribution takes the same --network; generation finds <model>.null.h5 beside the
    model, including at a nested layer whose name has a '/' (stored as '|' in HDF5)."""
    from model_metamers import images, results
    from model_metamers.validation import load_null

    tiny_cnn().save(str(tmp_path / 'tiny_cnn.keras'))
    (tmp_path / 'imgs').mkdir()
    rng = np.random.RandomState(0)
    for k in range(6):
        images.save_png(str(tmp_path / 'imgs' / ('n%d.png' % k)), rng.uniform(0, 1, (40, 40, 3)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH='')
    null = subprocess.run([sys.executable, '-m', 'model_metamers.null_distribution',
                           '--network=tiny_cnn.keras', '--dataset=imgs', '--num_pairs=12',
                           '--layers=block/conv1,fc', '--output=tiny_cnn.null.h5'],
                          cwd=str(tmp_path), env=dict(env, PYTHONPATH=REPO), capture_output=True,
                          text=True, timeout=600)
    assert null.returncode == 0, null.stderr[-3000:]
    with h5py.File(str(tmp_path / 'tiny_cnn.null.h5'), 'r') as f:
        assert sorted(f) == ['block|conv1', 'fc', 'logits']
        assert f.attrs['weights_sha1'] == hashlib.sha1((tmp_path / 'tiny_cnn.keras').read_bytes()).hexdigest()
    values = load_null(str(tmp_path / 'tiny_cnn.null.h5'))
    assert len(values['block/conv1']) == 12
    run = _cli(['--network=tiny_cnn.keras', '--layer=block/conv1', '--iterations=20', '--log_every=10',
                '--output_dir=out', '--figures=false'], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'null distribution: tiny_cnn.null.h5' in run.stderr
    path = str(tmp_path / 'out' / 'tiny_cnn' / 'airplane.h5')
    with h5py.File(path, 'r') as f:
        assert list(f) == ['block|conv1'] and f['block|conv1'].attrs['layer'] == 'block/conv1'
        assert float(f['block|conv1'].attrs['null_max']) == pytest.approx(float(np.max(values['block/conv1'])))
    assert [layer for layer, _, _ in results.entries(results.read_result(path))] == ['block/conv1']


def test_sequential_models_built_or_not():
    keras.utils.set_random_seed(1)
    stack = [keras.layers.Dense(6, activation='relu', name='hidden'), keras.layers.Dense(3, name='out')]
    unbuilt = keras.Sequential(stack)
    with pytest.raises(UserError, match='no fixed input shape'):
        MetamerNetwork.from_keras(unbuilt, sample_rate=100)
    net = MetamerNetwork.from_keras(unbuilt, input_shape=(50,), sample_rate=100)
    assert (net.modality, net.metamer_layers, net.logits_stage) == ('audio', ['hidden'], 'out')
    assert net.relu_stages == {'hidden': ['hidden/preactivation']}
    x = np.random.RandomState(0).randn(2, 50).astype(np.float32)
    np.testing.assert_allclose(net.logits(x).numpy(), unbuilt(x).numpy(), rtol=1e-5, atol=1e-6)
    built = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name='c'),
                              keras.layers.Activation('relu', name='act'), keras.layers.Flatten(),
                              keras.layers.Dense(2, name='logits')])
    net = MetamerNetwork.from_keras(built)
    assert net.modality == 'image' and net.metamer_layers == ['act'] and net.relu_stages == {'act': ['c']}


def test_weights_a_user_has_are_loaded_into_the_model(tmp_path):
    """--weights=<file>.weights.h5 loads into the user's model (its SHA-1 recorded); weights of
    another model and --weights=random are refused in one line."""
    path, weights = str(tmp_path / 'tiny_cnn.keras'), str(tmp_path / 'trained.weights.h5')
    tiny_cnn(seed=0).save(path)
    trained = tiny_cnn(seed=1)
    trained.save_weights(weights)
    net, label, sha1 = custom.load(path, weights=weights)
    x = _image(3)
    np.testing.assert_allclose(net.logits(x).numpy(), trained(x).numpy(), rtol=1e-5, atol=1e-6)
    assert label == weights and sha1 == hashlib.sha1(open(weights, 'rb').read()).hexdigest()
    other = str(tmp_path / 'other.weights.h5')
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(other)
    with pytest.raises(UserError, match='cannot load the weights .*other.weights.h5 into'):
        custom.load(path, weights=other)
    with pytest.raises(UserError, match='--weights=random does not apply'):
        custom.load(path, weights='random')


def test_a_function_may_return_a_metamer_network_and_take_weights(tmp_path, monkeypatch):
    """``module:function`` returning a MetamerNetwork: used as it is, named after the function,
    and ``--weights`` loads into its model."""
    weights = str(tmp_path / 'trained.weights.h5')
    trained = tiny_cnn(seed=2)
    MetamerNetwork.from_keras(trained, layers=['relu2']).model.save_weights(weights)
    (tmp_path / 'netmodule.py').write_text(
        'from model_metamers.networks import MetamerNetwork\n'
        'from tests.test_own_network import tiny_cnn\n\n\n'
        'def wrapped():\n    return MetamerNetwork.from_keras(tiny_cnn(seed=0), layers=["relu2"])\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(REPO)
    net, label, sha1 = custom.load('netmodule:wrapped', weights=weights)
    assert net.name == 'wrapped' and net.metamer_layers == ['relu2'] and label == weights
    x = _image(4)
    np.testing.assert_allclose(net.logits(x).numpy(), trained(x).numpy(), rtol=1e-5, atol=1e-6)
