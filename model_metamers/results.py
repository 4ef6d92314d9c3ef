"""The on-disk result contract of metamer generation (HDF5, written atomically).

Layout under ``<output_dir>/<network>/``:

* ``<stem>.h5``: one file per natural input. File attributes: ``network``,
  ``input``, ``modality``, ``sample_rate``, ``package_version``. One group per
  (generation layer, seed): named after the layer for seed 0 and
  ``<layer>@seed<N>`` for seed N (several metamers of one input and layer), with
  attributes ``layer`` and ``seed`` saying which (:func:`entries` reads them).
  A group holds datasets ``metamer`` (the
  synthesised input), ``natural``, ``loss`` and ``loss_steps`` (logged values),
  ``grad_norm``, ``change_norm``, ``learning_rates``, ``snapshots`` and
  ``snapshot_steps``, ``spearman_all_layers`` with ``spearman_layers`` (the
  layer order), and attributes ``spearman_matched``, ``same_class``, ``passed``,
  ``natural_class``, ``metamer_class``, ``learning_rate``, ``iterations``,
  ``seed``, ``weights``, ``weights_sha1``, ``package_version`` (plus ``null_max``, ``criterion``,
  ``status``, ``procedure``, ``domain``, ``elapsed_s``, ``log_every``).
* ``parts/<stem>/<layer>[@seed<N>].h5``: the same group for one layer and seed,
  written as soon as that job finishes. ``<stem>.h5`` is assembled from the parts;
  cluster shards write parts only (and their job list to ``parts/_plan/``) and
  ``merge`` assembles them.
"""

import contextlib
import dataclasses
import glob
import hashlib
import io
import json
import os
import sys

import h5py
import numpy as np

from model_metamers.errors import UserError
from model_metamers.fileio import decoded, h5_name, key_of_h5_name, write_h5, write_text
from model_metamers import __version__

PART_DIR = 'parts'
PLAN_DIR = '_plan'
SEED_MARK = '@seed'


class ResultFileError(UserError, ValueError):
    """Unreadable part files, or a merge that misses jobs."""


def _atomic_h5(path, writer):
    write_h5(path, writer)


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


def result_key(layer, seed=0):
    """Name of the group (and part file stem) of one metamer: the layer, plus ``@seed<N>`` unless seed 0."""
    return layer if int(seed) == 0 else '%s%s%d' % (layer, SEED_MARK, int(seed))


def part_path(network_dir, stem, layer, seed=0):
    return os.path.join(network_dir, PART_DIR, stem, layer_file_name(result_key(layer, seed)) + '.h5')


def result_path(network_dir, stem):
    return os.path.join(network_dir, stem + '.h5')


def _text(value):
    return str(decoded(value))


def layer_and_seed(name, attrs):
    """``(layer, seed)`` of the group ``name`` with attributes ``attrs`` (old files: the name is the layer)."""
    layer = _text(attrs['layer']) if 'layer' in attrs else name.split(SEED_MARK)[0]
    return layer, int(attrs.get('seed', 0))


def entries(res):
    """``[(layer, seed, entry)]`` of a :func:`read_result` dict, in file order."""
    return [layer_and_seed(name, entry['attrs']) + (entry,)
            for name, entry in res.items() if name != '_file']


def write_part(path, file_attrs, key, datasets, attrs):
    """Write one job's result (group ``key``, see :func:`result_key`) to its own part file, atomically."""
    def writer(f):
        for k, v in file_attrs.items():
            f.attrs[k] = _attr_value(v)
        group = f.create_group(h5_name(key))
        for k, v in datasets.items():
            group.create_dataset(k, data=np.asarray(v))
        for k, v in attrs.items():
            group.attrs[k] = _attr_value(v)
    _atomic_h5(path, writer)


def migrate_legacy_part(network_dir, stem, layer):
    """Move a part that older code wrote for a seed N != 0 to its own name; returns the new path.

    Before results were keyed by seed, every seed's part was ``<layer>.h5`` (group
    ``<layer>``, attribute ``seed``), so a seed-0 run would have replaced it.
    Returns None when there is nothing to move (or it cannot be read).
    """
    path = part_path(network_dir, stem, layer)
    try:
        with h5py.File(path, 'r') as f:
            if layer not in f or 'layer' in f[layer].attrs:
                return None
            seed = int(f[layer].attrs.get('seed', 0))
    except (OSError, KeyError, ValueError, RuntimeError):
        return None
    if seed == 0:
        return None
    target = part_path(network_dir, stem, layer, seed)
    if not os.path.exists(target):
        res = read_result(path)
        write_part(target, res['_file'], result_key(layer, seed), res[layer]['datasets'],
                   dict(res[layer]['attrs'], layer=layer))
    os.remove(path)
    return target


def _reason(exc):
    return str(exc).strip() or type(exc).__name__


def check_part(path):
    """``None`` if the part file at ``path`` reads as a result, else the reason it does not."""
    try:
        with h5py.File(path, 'r') as f:
            names = list(f)
            if not names:
                return 'no result in it'
            for name in names:
                if not isinstance(f[name], h5py.Group) or 'metamer' not in f[name]:
                    return 'group %s holds no metamer' % name
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        return _reason(exc)
    return None


def part_files(network_dir, stem):
    parts = sorted(glob.glob(os.path.join(glob.escape(os.path.join(network_dir, PART_DIR, stem)), '*.h5')))
    return [p for p in parts if not p.endswith('.state.h5')]


def _groups(path):
    try:
        with h5py.File(path, 'r') as f:
            return set(f)
    except (OSError, ValueError, RuntimeError):
        return None


def _up_to_date(path, parts, kept=()):
    """Whether ``path`` exists, is newer than every part and holds exactly their groups (and ``kept``)."""
    try:
        if parts and os.path.getmtime(path) < max(os.path.getmtime(p) for p in parts):
            return False
    except OSError:
        return False
    wanted = set(kept)
    for part in parts:
        wanted |= _groups(part) or set()
    return _groups(path) == wanted


def _key_of_part(part):
    """The HDF5 group name a part file holds (its file name; '/' in layer names was written as '__')."""
    return h5_name(os.path.basename(part)[:-len('.h5')].replace('__', '/'))


def _usable_parts(network_dir, stem, bad):
    """Readable parts, and the groups of unreadable ones that ``<stem>.h5`` still holds."""
    parts, kept = [], []
    old = _groups(result_path(network_dir, stem)) or set()
    for part in part_files(network_dir, stem):
        reason = check_part(part)
        if reason is None:
            parts.append(part)
            continue
        if bad is None:
            raise ResultFileError('part file %s is unreadable (%s); delete it and run its job again'
                                  % (part, reason))
        bad.append((part, reason))
        if _key_of_part(part) in old:
            kept.append(_key_of_part(part))
    return parts, kept


def needs_assembly(network_dir, stem):
    """Whether :func:`assemble` would write ``<stem>.h5`` (it is missing or out of date)."""
    parts, kept = _usable_parts(network_dir, stem, [])
    return bool(parts or kept) and not _up_to_date(result_path(network_dir, stem), parts, kept)


def assemble(network_dir, stem, bad=None, kept=None):
    """Build ``<stem>.h5`` from every readable part of that input; returns its path (None if no part).

    An unreadable part is left out and ``(path, reason)`` appended to ``bad``
    (without a ``bad`` list it is a :class:`ResultFileError` naming the file);
    if the earlier ``<stem>.h5`` holds that part's group, the group is kept and
    its name appended to ``kept``. A result file newer than its parts, with the
    same groups, is not written again.
    """
    parts, keep = _usable_parts(network_dir, stem, bad)
    if kept is not None:
        kept += keep
    if not parts and not keep:
        return None
    path = result_path(network_dir, stem)
    if _up_to_date(path, parts, keep):
        return path
    with open(path, 'rb') if keep else contextlib.nullcontext() as f:
        old = f.read() if keep else None  # the kept groups' source is replaced below

    def writer(out):
        if old is not None:
            with h5py.File(io.BytesIO(old), 'r') as f:
                for k, v in f.attrs.items():
                    out.attrs[k] = v
                for name in keep:
                    f.copy(f[name], out, name=name)
        for part in parts:
            with h5py.File(part, 'r') as f:
                for k, v in f.attrs.items():
                    out.attrs[k] = v
                for name in f:
                    f.copy(f[name], out, name=name)
    _atomic_h5(path, writer)
    return path


def stems_with_parts(network_dir):
    return sorted(os.path.basename(d) for d in glob.glob(os.path.join(glob.escape(network_dir), PART_DIR, '*'))
                  if os.path.isdir(d) and not os.path.basename(d).startswith('_'))


def write_plan(network_dir, jobs, num_shards):
    """Record a sharded run's whole job list (``[(stem, key, shard)]``) for :func:`merge` to check."""
    text = json.dumps({'num_shards': num_shards, 'jobs': [list(j) for j in jobs]}, sort_keys=True)
    name = hashlib.sha1(text.encode()).hexdigest()[:16] + '.json'
    path = os.path.join(network_dir, PART_DIR, PLAN_DIR, name)
    if not os.path.exists(path):  # every shard of an array writes the same plan
        write_text(path, text)
    return path


def planned_jobs(network_dir):
    """``{(stem, key): (shard, num_shards)}`` from every plan a sharded run recorded."""
    jobs = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(network_dir), PART_DIR, PLAN_DIR, '*.json'))):
        try:
            with open(path, encoding='utf-8') as f:
                plan = json.load(f)
            for stem, key, shard in plan['jobs']:
                jobs[(stem, key)] = (int(shard), int(plan['num_shards']))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return jobs


def merge_problems(network_dir):
    """``(missing, bad)``: planned jobs without a part file, and unreadable parts ``(path, reason)``."""
    missing = []
    for (stem, key), (shard, num) in sorted(planned_jobs(network_dir).items()):
        path = os.path.join(network_dir, PART_DIR, stem, layer_file_name(key) + '.h5')
        if not os.path.exists(path):
            missing.append((stem, key, shard, num))
    bad = []
    for stem in stems_with_parts(network_dir):
        for part in part_files(network_dir, stem):
            reason = check_part(part)
            if reason is not None:
                bad.append((part, reason))
    return missing, bad


def merge(network_dir, allow_incomplete=False):
    """Assemble every input's file from the parts under ``network_dir`` (after sharded runs).

    Jobs a sharded run planned but no shard finished, and unreadable parts, are
    all listed in one :class:`ResultFileError` and nothing is written, unless
    ``allow_incomplete`` (then the readable parts are assembled).
    """
    missing, bad = merge_problems(network_dir)
    if (missing or bad) and not allow_incomplete:
        raise ResultFileError(describe_problems(missing, bad) + '; run the missing shards (or delete '
                              'the unreadable parts and run their shards again) and merge again, or '
                              'pass --allow_incomplete to assemble what is there')
    return [p for p in (assemble(network_dir, s, bad=[]) for s in stems_with_parts(network_dir)) if p]


def describe_problems(missing, bad):
    """One line about missing jobs and unreadable parts (see :func:`merge_problems`)."""
    said = []
    if missing:
        shards = sorted({(shard, num) for _, _, shard, num in missing})
        said.append('%d job(s) have no result: %s (from shard(s) %s)' % (
            len(missing), ', '.join('%s / %s' % (stem, key) for stem, key, _, _ in missing),
            ', '.join('%d of %d' % s for s in shards)))
    if bad:
        said.append('%d part file(s) are unreadable: %s' % (
            len(bad), ', '.join('%s (%s)' % b for b in bad)))
    return '; '.join(said)


def read_result(path):
    """``{group: {'datasets': {...}, 'attrs': {...}}}`` plus ``'_file'`` attrs, as numpy.

    Groups are named by :func:`result_key`; :func:`entries` gives ``(layer, seed, entry)``.
    """
    out = {}
    with h5py.File(path, 'r') as f:
        out['_file'] = dict(f.attrs)
        for name in f:
            group = f[name]
            out[key_of_h5_name(name)] = {'datasets': {k: group[k][()] for k in group},
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


@dataclasses.dataclass(frozen=True)
class Record:
    """One metamer of a result file (a group: one generation layer and seed), decoded.

    ``datasets`` and ``attrs`` are numpy values with byte strings as ``str``
    (``spearman_layers`` an array of str); ``file_attrs`` the file's attributes,
    decoded the same way. ``record['datasets']`` / ``record['attrs']`` also work,
    like the dicts of :func:`read_result`.
    """

    path: str
    key: str
    layer: str
    seed: int
    datasets: dict
    attrs: dict
    file_attrs: dict

    @property
    def stem(self):
        """The input's name: the result file's name without ``.h5``."""
        return os.path.splitext(os.path.basename(self.path))[0]

    def __getitem__(self, name):
        if name not in ('datasets', 'attrs'):
            raise KeyError(name)
        return getattr(self, name)


def _records_of(path, res):
    file_meta = {k: decoded(v) for k, v in res['_file'].items()}
    out = []
    for name, entry in res.items():
        if name == '_file':
            continue
        attrs = {k: decoded(v) for k, v in entry['attrs'].items()}
        layer, seed = layer_and_seed(name, attrs)
        out.append(Record(path=path, key=name, layer=layer, seed=seed, attrs=attrs, file_attrs=file_meta,
                          datasets={k: decoded(v) for k, v in entry['datasets'].items()}))
    return out


def file_records(path):
    """The :class:`Record` of every metamer in the result file ``path``, in file order."""
    return _records_of(path, read_result(path))


def records(folder, note=None):
    """Yield the :class:`Record` of every metamer in the result files ``<folder>/*.h5``.

    Files in sorted order, each file's groups in file order. Files that are not
    results are skipped with a note (see :func:`read_results_folder`).
    """
    for path, res in read_results_folder(folder, note):
        yield from _records_of(path, res)


def file_attrs(network, input_path, weights):
    return {'network': network.name, 'input': str(input_path), 'modality': network.modality,
            'sample_rate': network.sample_rate or 0, 'weights': str(weights),
            'package_version': __version__}
