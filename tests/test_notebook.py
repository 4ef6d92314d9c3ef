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
