"""The Colab notebook runs end to end in smoke mode (random weights, 3 iterations, no downloads)."""

import json
import os

import matplotlib

from tests.conftest import REPO

NOTEBOOK = os.path.join(REPO, 'notebooks', 'model_metamers_colab.ipynb')


def test_colab_notebook_runs_in_smoke_mode(monkeypatch):
    matplotlib.use('Agg')
    monkeypatch.setenv('MODEL_METAMERS_SMOKE', '1')
    notebook = json.load(open(NOTEBOOK))
    cells = [c for c in notebook['cells'] if c['cell_type'] == 'code']
    assert len(cells) >= 6
    namespace = {'__name__': '__notebook__'}
    for index, cell in enumerate(cells):
        source = ''.join(cell['source'])
        assert not any(line.lstrip().startswith(('!', '%')) for line in source.splitlines()), \
            'cell %d uses IPython syntax, which plain Python (and this test) cannot run' % index
        exec(compile(source, 'notebook cell %d' % index, 'exec'), namespace)  # noqa: S102
    assert namespace['SMOKE'] and namespace['ITERATIONS'] == 3
    for name in ('audio_result', 'image_result'):
        result = namespace[name]
        assert -1 <= result.spearman_matched <= 1
    assert namespace['sound_metamer'].shape == (40000,)
    assert namespace['image_metamer'].shape == (224, 224, 3)
    assert namespace['audio_synth'].step == 3 and namespace['image_synth'].step == 3
    # Section 7, your own network: keras.applications' ResNet50 through MetamerNetwork.from_keras.
    own_net, own_result = namespace['own_net'], namespace['own_result']
    assert own_net.name == 'resnet50' and len(own_net.class_names) == 1000
    assert 'resnet50/conv1_relu' in own_net.metamer_layers
    assert namespace['own_metamer'].shape == (224, 224, 3)
    assert -1 <= own_result.spearman_matched <= 1 and namespace['own_synth'].step == 3
