"""Checkpoints of a training run, all written atomically, in ``output_dir``:

* ``<network>.weights.h5``: the best weights so far (by the validation score); the
  file ``networks.build(name, weights=PATH)`` loads, and what ``--weights=auto`` finds
  when ``output_dir`` is ``checkpoints/``;
* ``<network>.last.weights.h5``: the weights after the last finished epoch;
* ``<network>.last.optimizer.npz``: the optimiser's variables then (Adam moments, step);
* ``<network>.train_state.json``: epochs done, history, best score, settings.

A run resumes from ``last`` when the state file exists and its settings match.
"""

import json
import os

import numpy as np

from model_metamers import fileio, weights_io


def paths(output_dir, network):
    base = os.path.join(output_dir, network)
    return {'best': base + '.weights.h5', 'last': base + '.last.weights.h5',
            'optimizer': base + '.last.optimizer.npz', 'state': base + '.train_state.json'}


def save_weights(net, path, attrs):
    weights_io.save_weights(net.model, path, attrs=dict({'network': net.name}, **attrs))


def save_optimizer(optimizer, path):
    with fileio.atomic_path(path, '.npz') as tmp:
        with open(tmp, 'wb') as f:
            np.savez(f, *[np.asarray(v.numpy()) for v in optimizer.variables])


def load_optimizer(optimizer, variables, path):
    """Build ``optimizer`` for ``variables`` and assign the saved state (same order)."""
    if not optimizer.built:
        optimizer.build(variables)
    with np.load(path) as saved:
        values = [saved['arr_%d' % i] for i in range(len(saved.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError('optimizer state %s has %d variables, the optimizer %d; delete it to start '
                         'over' % (path, len(values), len(optimizer.variables)))
    for var, value in zip(optimizer.variables, values):
        var.assign(value)


def save_state(path, state):
    fileio.write_text(path, json.dumps(state, indent=1, sort_keys=True) + '\n')


def load_state(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)
