"""Resuming a run: the state files of interrupted batches and the batches of one layer.

A batch being synthesised saves its state to
``parts/_state/<layer>/<stems>[@seed<N>].state.h5`` every ``checkpoint_every``
iterations; a rerun continues it (:func:`plan_batches`), and removes the state
of a batch whose inputs are all done.
"""

import glob
import hashlib
import os

import numpy as np

from model_metamers import result_records, results, validation


STATE_SUFFIX = '.state.h5'


def state_dir(network_dir, layer):
    """The folder of the state files of ``layer``'s interrupted batches."""
    return os.path.join(network_dir, results.PART_DIR, '_state', results.layer_file_name(layer))


def state_path(network_dir, layer, stems, seed=0):
    """The state file of the batch ``stems`` (its names joined, or their SHA-1 when long)."""
    key = '+'.join(stems)
    if len(key) > 80:
        key = hashlib.sha1(key.encode()).hexdigest()
    return os.path.join(state_dir(network_dir, layer), results.result_key(key, seed) + STATE_SUFFIX)


def state_owner(path):
    """``(stems, seed)`` of the batch a state file belongs to; None when that cannot be told."""
    import json

    import h5py
    try:
        with h5py.File(path, 'r') as f:
            note = json.loads(f.attrs.get('annotations', '{}'))
    except (OSError, ValueError, RuntimeError):
        return None
    if 'stems' in note:
        return list(note['stems']), int(note.get('seed', 0))
    # States written before they were annotated: the name is the batch's stems (when short).
    name = os.path.basename(path)[:-len(STATE_SUFFIX)]
    key, _, seed = name.partition(results.SEED_MARK)
    if len(key) == 40 and '+' not in key:
        return None
    return key.split('+'), int(seed) if seed.isdigit() else 0


def plan_batches(network_dir, layer, todo, done, stems, settings, log):
    """Batches (lists of input indices) for one layer, interrupted batches first.

    A state file of an interrupted batch whose inputs are all still to do is
    resumed with its own batch (so that a rerun with another ``--batch_size``
    continues it instead of starting over); one whose inputs are all done is
    removed. The rest is cut into batches of ``settings.batch_size``.
    """
    left = list(todo)
    batches = []
    for path in sorted(glob.glob(os.path.join(glob.escape(state_dir(network_dir, layer)), '*' + STATE_SUFFIX))):
        owner = state_owner(path)
        if owner is None or owner[1] != settings.seed:
            continue
        index = {stems[i]: i for i in left}
        if all(s in index for s in owner[0]):
            batch = [index[s] for s in owner[0]]
            if len(batch) != settings.batch_size:
                log('%s: resuming an interrupted batch of %d input(s) (%s) from %s; --batch_size=%d '
                    'applies to the others' % (layer, len(batch), ', '.join(owner[0]), path,
                                               settings.batch_size))
            batches.append(batch)
            left = [i for i in left if i not in batch]
        elif owner[0] and all(s in done for s in owner[0]):
            remove_if_there(path)
    batches += [left[k:k + settings.batch_size] for k in range(0, len(left), settings.batch_size)]
    return batches


def remove_if_there(path):
    """Remove ``path``; gone already is fine."""
    try:
        os.remove(path)
    except FileNotFoundError:  # a concurrent run on the same folder removed it first
        pass


def classify_jobs(run, layers, jobs):
    """What is done, what needs validating again, what is to be made (reads only).

    ``run``: the generation run (settings, network, folder, stems, weights, null,
    learning rate, log); ``jobs``: this shard's ``(input index, layer)``. Returns
    ``(by_layer, finished, revalidate, todo)``: ``{layer: [input index]}``,
    ``{(i, layer): attrs}`` of parts done with these settings, the finished jobs
    whose null threshold changed, and ``{layer: [input index]}`` still to make.
    A part that cannot be read is said and made again.
    """
    by_layer = {}
    for i, layer in jobs:
        by_layer.setdefault(layer, []).append(i)
    finished, revalidate, todo = {}, [], {}
    for layer in layers:
        threshold = (validation.null_threshold(run.null, run.network, layer)
                     if by_layer.get(layer) else None)
        for i in by_layer.get(layer, []):
            path = results.part_path(run.network_dir, run.stems[i], layer, run.settings.seed)
            reason = results.check_part(path) if os.path.exists(path) else None
            attrs = None if reason else result_records.finished_attrs(
                path, layer, run.settings, run.weights, run.weights_id, run.learning_rate)
            if reason:
                run.log('%s / %s: part file %s is unreadable (%s); making it again' % (
                    run.stems[i], layer, path, reason))
            if attrs is None:
                todo.setdefault(layer, []).append(i)
                continue
            finished[(i, layer)] = attrs
            if not np.array_equal(float(attrs.get('null_max', np.nan)), threshold, equal_nan=True):
                revalidate.append((i, layer))
    return by_layer, finished, revalidate, todo
