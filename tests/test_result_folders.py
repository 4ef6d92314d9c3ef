"""One reader of result folders: results.records yields decoded records, in file order."""

import h5py
import numpy as np

from model_metamers import results
from model_metamers.fileio import decoded


def _write_result(folder, stem, groups):
    path = str(folder / ('%s.h5' % stem))
    with h5py.File(path, 'w') as f:
        f.attrs['network'] = np.bytes_(b'toy')  # fixed-length bytes, as older h5py wrote them
        f.attrs['modality'] = 'audio'
        for key, attrs in groups:
            g = f.create_group(key)
            for name in ('metamer', 'natural', 'spearman_all_layers'):
                g.create_dataset(name, data=np.zeros(3))
            g.create_dataset('spearman_layers', data=np.asarray(['conv_0', 'relu_1', 'x'], dtype='S'))
            for k, v in attrs.items():
                g.attrs[k] = v
    return path


def test_records_are_decoded_and_keyed_by_layer_and_seed(tmp_path, capsys):
    _write_result(tmp_path, 'b_input', [('conv_0', {'spearman_matched': 0.5, 'layer': 'conv_0'})])
    _write_result(tmp_path, 'a_input', [
        ('relu_1@seed3', {'spearman_matched': 0.25, 'layer': np.bytes_(b'relu_1'), 'seed': 3,
                          'domain': np.bytes_(b'cochleagram')}),
        ('conv_0', {'spearman_matched': 0.75})])  # an older file: no layer attribute
    with h5py.File(tmp_path / 'null.h5', 'w') as f:
        f.attrs['format'] = 'model_metamers.null.v1'
    found = list(results.records(str(tmp_path), note=lambda m: print(m)))
    assert [(r.stem, r.key, r.layer, r.seed) for r in found] == [
        ('a_input', 'conv_0', 'conv_0', 0), ('a_input', 'relu_1@seed3', 'relu_1', 3),
        ('b_input', 'conv_0', 'conv_0', 0)]
    rec = found[1]
    assert rec.attrs['domain'] == 'cochleagram' and rec.file_attrs['network'] == 'toy'
    assert list(rec.datasets['spearman_layers']) == ['conv_0', 'relu_1', 'x']
    assert all(isinstance(n, str) for n in rec.datasets['spearman_layers'])
    assert rec['attrs'] is rec.attrs and rec['datasets'] is rec.datasets
    assert 'skipping' in capsys.readouterr().out  # the null beside the results is said and skipped


def test_decoded_leaves_other_values_alone():
    assert decoded(b'abc') == 'abc' and decoded(np.bytes_(b'x')) == 'x'
    assert decoded(3) == 3 and decoded('s') == 's'
    floats = np.arange(3.0)
    assert decoded(floats) is floats
