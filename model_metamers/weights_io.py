"""Save and load Keras weights by layer and variable name, in HDF5 (``*.weights.h5``).

Keras' own weight files key variables by the model's object structure, so a
file only loads into a model built in exactly the same order. Here every
variable is stored as ``/<layer name>/<variable name>``, so files load by name
(as keras.applications does) and a mismatch can be reported name by name.
"""

import os

import h5py
import numpy as np

from model_metamers.fileio import atomic_path

FORMAT = 'model_metamers.weights.v1'


def named_variables(model):
    """``{'<layer>/<variable>': variable}`` over every layer with weights, in model order."""
    out = {}
    for layer in model.layers:
        for var in layer.weights:
            key = '%s/%s' % (layer.name, var.name.split('/')[-1].split(':')[0])
            if key in out:
                raise ValueError('two variables are both named %r; give the layers unique names' % key)
            out[key] = var
    return out


def save_weights(model, path, attrs=None):
    """Write every weight of ``model`` to ``path`` atomically (temp file + rename)."""
    variables = named_variables(model)
    with atomic_path(path, '.h5') as tmp:
        with h5py.File(tmp, 'w') as f:
            f.attrs['format'] = FORMAT
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            for key, var in variables.items():
                f.create_dataset(key, data=np.asarray(var.numpy()))


def load_weights(model, path):
    """Assign every weight of ``model`` from ``path``; one clear error on any mismatch."""
    if not os.path.exists(path):
        raise FileNotFoundError('weights file %s does not exist' % path)
    variables = named_variables(model)
    with h5py.File(path, 'r') as f:
        if f.attrs.get('format') != FORMAT:
            raise ValueError('%s is not a model_metamers weights file (format attribute %r); '
                             'convert checkpoints with python -m model_metamers.convert_checkpoint'
                             % (path, f.attrs.get('format')))
        saved_for = f.attrs.get('network')
        stored = {}
        f.visititems(lambda k, v: stored.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    missing = sorted(set(variables) - set(stored))
    unexpected = sorted(set(stored) - set(variables))
    bad_shape = sorted(k for k in set(variables) & set(stored)
                       if tuple(stored[k].shape) != tuple(variables[k].shape))
    if missing or unexpected or bad_shape:
        if saved_for is not None and str(saved_for) != model.name:
            lines = ['weights file %s holds weights of network %s, not %s: pass --network=%s, or '
                     'weights of %s; the differences:' % (path, saved_for, model.name, saved_for, model.name)]
        else:
            lines = ['weights file %s does not fit model %s:' % (path, model.name)]
        if missing:
            lines.append('  missing from the file: ' + ', '.join(missing))
        if unexpected:
            lines.append('  in the file but not in the model: ' + ', '.join(unexpected))
        for k in bad_shape:
            lines.append('  %s: file %s, model %s' % (k, stored[k].shape, tuple(variables[k].shape)))
        raise ValueError('\n'.join(lines))
    for key, var in variables.items():
        var.assign(stored[key])
