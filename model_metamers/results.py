"""The on-disk result contract of metamer generation (HDF5, written atomically).

Layout under ``<output_dir>/<network>/``:

* ``<stem>.h5``: one file per natural input. File attributes: ``network``,
  ``input``, ``modality``, ``sample_rate``, ``package_version``. One group per
  generation layer, named after the layer, holding datasets ``metamer`` (the
  synthesised input), ``natural``, ``loss`` and ``loss_steps`` (logged values),
  ``grad_norm``, ``change_norm``, ``learning_rates``, ``snapshots`` and
  ``snapshot_steps``, ``spearman_all_layers`` with ``spearman_layers`` (the
  layer order), and attributes ``spearman_matched``, ``same_class``, ``passed``,
  ``natural_class``, ``metamer_class``, ``learning_rate``, ``iterations``,
  ``seed``, ``weights``, ``weights_sha1``, ``package_version`` (plus ``null_max``, ``criterion``,
  ``status``, ``procedure``, ``domain``, ``elapsed_s``).
* ``parts/<stem>/<layer>.h5``: the same group for one layer, written as soon as
  that layer finishes. ``<stem>.h5`` is assembled from the parts; cluster shards
  write parts only and ``merge`` assembles them.
"""

import glob
import os
import sys

import h5py
import numpy as np

from model_metamers.fileio import atomic_path
from model_metamers import __version__

PART_DIR = 'parts'


def _atomic_h5(path, writer):
    with atomic_path(path, '.h5') as tmp:
        with h5py.File(tmp, 'w') as f:
            writer(f)


def _attr_value(value):
    if value is None:
        return 'none'
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def layer_file_name(layer):
    """Safe file name for a layer (slim end points contain '/')."""
    return layer.replace('/', '__')


def part_path(network_dir, stem, layer):
    return os.path.join(network_dir, PART_DIR, stem, layer_file_name(layer) + '.h5')


def result_path(network_dir, stem):
    return os.path.join(network_dir, stem + '.h5')


def write_part(path, file_attrs, layer, datasets, attrs):
    """Write one layer's result (group ``layer``) to its own part file, atomically."""
    def writer(f):
        for k, v in file_attrs.items():
            f.attrs[k] = _attr_value(v)
        group = f.create_group(layer)
        for k, v in datasets.items():
            group.create_dataset(k, data=np.asarray(v))
        for k, v in attrs.items():
            group.attrs[k] = _attr_value(v)
    _atomic_h5(path, writer)


def assemble(network_dir, stem):
    """Build ``<stem>.h5`` from every part of that input; returns its path (None if no part)."""
    parts = sorted(glob.glob(os.path.join(network_dir, PART_DIR, stem, '*.h5')))
    parts = [p for p in parts if not p.endswith('.state.h5')]
    if not parts:
        return None
    path = result_path(network_dir, stem)

    def writer(out):
        for part in parts:
            with h5py.File(part, 'r') as f:
                for k, v in f.attrs.items():
                    out.attrs[k] = v
                for name in f:
                    f.copy(f[name], out, name=name)
    _atomic_h5(path, writer)
    return path


def merge(network_dir):
    """Assemble every input's file from the parts under ``network_dir`` (after sharded runs)."""
    stems = sorted(os.path.basename(d) for d in glob.glob(os.path.join(network_dir, PART_DIR, '*'))
                   if os.path.isdir(d))
    return [p for p in (assemble(network_dir, s) for s in stems) if p]


def read_result(path):
    """``{layer: {'datasets': {...}, 'attrs': {...}}}`` plus ``'_file'`` attrs, as numpy."""
    out = {}
    with h5py.File(path, 'r') as f:
        out['_file'] = dict(f.attrs)
        for name in f:
            group = f[name]
            out[name] = {'datasets': {k: group[k][()] for k in group},
                         'attrs': dict(group.attrs)}
    return out


# What reports, transfer and export read from every layer group of a result file.
_LAYER_DATASETS = ('metamer', 'natural', 'spearman_layers', 'spearman_all_layers')


def not_a_result(res):
    """Why ``res`` (from :func:`read_result`) is not a metamer result file, or None if it is one."""
    if res['_file'].get('format') in ('model_metamers.null.v1', b'model_metamers.null.v1'):
        return 'a null distribution, not a metamer result'
    layers = [k for k in res if k != '_file']
    if not layers:
        return 'no layer groups'
    for layer in layers:
        lacking = [d for d in _LAYER_DATASETS if d not in res[layer]['datasets']]
        if lacking or 'spearman_matched' not in res[layer]['attrs']:
            return 'group %r lacks %s' % (layer, ', '.join(lacking or ['spearman_matched']))
    return None


def read_results_folder(folder, note=None):
    """``[(path, result)]`` for the result files ``<folder>/*.h5``, sorted by path.

    Any other ``.h5`` there (a null distribution saved beside the results, an
    unreadable file) is skipped, and ``note`` (default: print to stderr) is told
    which and why, so that one stray file does not stop a report of the others.
    """
    note = note or (lambda message: print(message, file=sys.stderr))
    out = []
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), '*.h5'))):
        try:
            res = read_result(path)
        except (OSError, KeyError, ValueError) as exc:
            note('note: skipping %s: not a readable HDF5 file (%s)' % (path, exc))
            continue
        why = not_a_result(res)
        if why:
            note('note: skipping %s: %s' % (path, why))
            continue
        out.append((path, res))
    return out


def file_attrs(network, input_path, weights):
    return {'network': network.name, 'input': str(input_path), 'modality': network.modality,
            'sample_rate': network.sample_rate or 0, 'weights': str(weights),
            'package_version': __version__}
