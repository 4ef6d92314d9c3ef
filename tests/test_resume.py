"""What a rerun reuses: a finished part only with the same settings, a state file only of its own seed.

Fast (no network, no TensorFlow): parts and state files are written by hand, as the
generation run writes them, and :mod:`model_metamers.resume` / :mod:`model_metamers.result_records`
decide. Found by a mutation run (issue 25): each setting's comparison below was removable
without any generation test noticing.
"""

import json
import os
import types

import h5py
import numpy as np
import pytest

from model_metamers import result_records, results, resume
from model_metamers.generation import GenerationSettings

WEIGHTS = 'checkpoints/net.weights.h5'
SHA1 = 'a' * 40


def _attrs(**kw):
    """The attributes a finished part of relu1 has when made with :func:`_settings` (seed 0)."""
    attrs = {'requested_iterations': 20, 'seed': 0, 'weights': WEIGHTS, 'weights_sha1': SHA1,
             'procedure': 'feather2019', 'domain': 'stimulus', 'modified_relu': True,
             'learning_rate': 0.01, 'stage_iterations': -1, 'stages': -1, 'layer': 'relu1'}
    attrs.update(kw)
    return attrs


def _settings(**kw):
    base = dict(network='toy_audio', layers=['relu1'], weights=WEIGHTS, iterations=20, learning_rate=0.01)
    base.update(kw)
    return GenerationSettings(**base)


def _part(tmp_path, attrs, key='relu1'):
    path = str(tmp_path / 'part.h5')
    results.write_part(path, {}, key, {'metamer': np.zeros(3)}, attrs)
    return path


def _reused(path, settings, weights_id=SHA1, learning_rate=0.01):
    return result_records.finished_attrs(path, 'relu1', settings, settings.weights, weights_id,
                                         learning_rate) is not None


def test_a_part_made_with_these_settings_is_reused(tmp_path):
    assert _reused(_part(tmp_path, _attrs()), _settings())


@pytest.mark.parametrize('changed', [
    dict(seed=3),                       # a part written before seeds were keyed: group 'relu1'
    dict(requested_iterations=30),
    dict(requested_iterations=-1),      # made with the procedure's default, now --iterations=20
    dict(weights='checkpoints/other.weights.h5'),
    dict(weights_sha1='b' * 40),        # the same path, retrained weights
    dict(procedure='feather2023'),
    dict(domain='cochleagram'),
    dict(modified_relu=False),
    dict(learning_rate=0.02),
])
def test_a_part_made_with_other_settings_is_made_again(tmp_path, changed):
    assert not _reused(_part(tmp_path, _attrs(**changed)), _settings())


def test_a_part_from_before_weights_were_fingerprinted_is_judged_by_the_path(tmp_path):
    attrs = _attrs()
    del attrs['weights_sha1']
    assert _reused(_part(tmp_path, attrs), _settings())
    assert not _reused(_part(tmp_path, dict(attrs, weights='other.h5')), _settings())


def test_the_default_iteration_count_is_stored_as_minus_one(tmp_path):
    path = _part(tmp_path, _attrs(requested_iterations=-1))
    assert _reused(path, _settings(iterations=None))
    assert not _reused(_part(tmp_path, _attrs()), _settings(iterations=None))


def test_the_learning_rate_compared_is_the_one_the_run_uses(tmp_path):
    path = _part(tmp_path, _attrs(learning_rate=0.001))
    # --learning_rate not given: the run passes the network's default, 0.001.
    assert _reused(path, _settings(learning_rate=None), learning_rate=0.001)
    assert not _reused(path, _settings(learning_rate=None), learning_rate=0.01)


@pytest.mark.parametrize('part,asked,reused', [
    (dict(stage_iterations=3000, stages=8), dict(), True),            # defaults are 3000 x 8
    (dict(), dict(), True),                                           # parts from before issue 20
    (dict(stage_iterations=100, stages=8), dict(), False),
    (dict(stage_iterations=3000, stages=4), dict(), False),
    (dict(stage_iterations=100, stages=4), dict(stage_iterations=100, stages=4), True),
    (dict(stage_iterations=3000, stages=8), dict(stage_iterations=100), False),
    (dict(stage_iterations=3000, stages=8), dict(stages=4), False),
])
def test_a_2023_part_is_reused_only_with_its_schedule(tmp_path, part, asked, reused):
    attrs = _attrs(procedure='feather2023')
    del attrs['stage_iterations'], attrs['stages']
    attrs.update(part)
    assert _reused(_part(tmp_path, attrs), _settings(procedure='feather2023', **asked)) is reused


def test_a_2019_part_ignores_the_2023_schedule(tmp_path):
    assert _reused(_part(tmp_path, _attrs()), _settings(stage_iterations=100, stages=4))


def test_a_missing_or_other_seed_part_is_not_finished(tmp_path):
    assert not _reused(str(tmp_path / 'none.h5'), _settings())
    path = _part(tmp_path, _attrs(seed=2), key='relu1@seed2')
    assert _reused(path, _settings(seed=2))
    assert not _reused(path, _settings(seed=0))  # no group 'relu1' in it


# ------------------------------------------------------------------ state files of interrupted batches

def _state(network_dir, layer, stems, seed=0, annotate=True):
    path = resume.state_path(network_dir, layer, stems, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, 'w') as f:
        if annotate:
            f.attrs['annotations'] = json.dumps({'stems': stems, 'seed': seed, 'layer': layer})
    return path


def test_state_owner_reads_the_annotation_or_the_name(tmp_path):
    folder = str(tmp_path)
    assert resume.state_owner(_state(folder, 'relu1', ['a', 'b'], seed=4)) == (['a', 'b'], 4)
    assert resume.state_owner(_state(folder, 'relu1', ['c', 'd'], seed=5, annotate=False)) == (['c', 'd'], 5)
    assert resume.state_owner(_state(folder, 'relu1', ['e'], annotate=False)) == (['e'], 0)
    forty = ['s' * 19, 't' * 20]  # joined: 40 characters, but with '+', so not a SHA-1
    assert resume.state_owner(_state(folder, 'relu1', forty, annotate=False)) == (forty, 0)
    long = ['stimulus_%02d' % k for k in range(10)]
    hashed = _state(folder, 'relu1', long, annotate=False)
    assert len(os.path.basename(hashed)) == 40 + len(resume.STATE_SUFFIX)
    assert resume.state_owner(hashed) is None  # a SHA-1 name says nothing
    os.remove(hashed)
    assert resume.state_owner(_state(folder, 'relu1', long, seed=2)) == (long, 2)  # its annotation does
    broken = tmp_path / 'broken.state.h5'
    broken.write_text('not hdf5')
    assert resume.state_owner(str(broken)) is None


def test_state_names_keep_short_batches_readable_and_hash_long_ones(tmp_path):
    short = resume.state_path('net', 'relu1', ['a', 'b'], seed=2)
    assert os.path.basename(short) == 'a+b@seed2' + resume.STATE_SUFFIX
    assert os.path.dirname(short) == os.path.join('net', 'parts', '_state', 'relu1')
    exact = ['x' * 40, 'y' * 39]                                       # joined: 80 characters
    assert os.path.basename(resume.state_path('net', 'relu1', exact)).startswith('x' * 40 + '+')
    longer = ['x' * 40, 'y' * 40]
    assert os.path.basename(resume.state_path('net', 'relu1', longer)) == (
        __import__('hashlib').sha1('+'.join(longer).encode()).hexdigest() + resume.STATE_SUFFIX)


def test_plan_resumes_its_own_seeds_batches_first_and_cuts_the_rest(tmp_path):
    folder = str(tmp_path)
    stems = ['s0', 's1', 's2', 's3', 's4']
    _state(folder, 'relu1', ['s3', 's1'], seed=0)
    other_seed = _state(folder, 'relu1', ['s0', 's2'], seed=1)
    said = []
    batches = resume.plan_batches(folder, 'relu1', [0, 1, 2, 3, 4], set(), stems,
                                  types.SimpleNamespace(seed=0, batch_size=2), said.append)
    assert batches == [[3, 1], [0, 2], [4]]
    assert said == []  # the resumed batch has --batch_size inputs: nothing to say
    assert os.path.exists(other_seed)  # another seed's state is neither resumed nor removed
    batches = resume.plan_batches(folder, 'relu1', [0, 1, 2, 3, 4], set(), stems,
                                  types.SimpleNamespace(seed=1, batch_size=3), said.append)
    assert batches == [[0, 2], [1, 3, 4]]
    assert len(said) == 1 and 'resuming an interrupted batch of 2 input(s) (s0, s2)' in said[0]
    assert '--batch_size=3 applies to the others' in said[0]


def test_an_interrupted_batch_of_long_names_is_resumed(tmp_path):
    stems = ['a_rather_long_name_of_a_recorded_stimulus_%02d' % k for k in range(4)]
    _state(str(tmp_path), 'relu1', stems[1:3])  # joined over 80 characters: a SHA-1 file name
    batches = resume.plan_batches(str(tmp_path), 'relu1', [0, 1, 2, 3], set(), stems,
                                  types.SimpleNamespace(seed=0, batch_size=1), lambda m: None)
    assert batches == [[1, 2], [0], [3]]


def test_plan_removes_the_state_of_a_finished_batch_only(tmp_path):
    folder = str(tmp_path)
    stems = ['s0', 's1', 's2']
    finished = _state(folder, 'relu1', ['s0', 's1'])
    half = _state(folder, 'relu1', ['s1', 's2'])   # s1 done, s2 to do: kept, not resumed
    batches = resume.plan_batches(folder, 'relu1', [2], {'s0', 's1'}, stems,
                                  types.SimpleNamespace(seed=0, batch_size=4), lambda m: None)
    assert batches == [[2]]
    assert not os.path.exists(finished)
    assert os.path.exists(half)
    resume.remove_if_there(finished)  # gone already is fine


# ------------------------------------------------------------------ what is written is what is compared

def _synth(procedure='feather2019', block_length=None, stages=None, modified_relu=True, seed=0):
    """The synthesiser fields :func:`result_records.settings_attrs` records (no network needed)."""
    proc = types.SimpleNamespace(name=procedure)
    if block_length is not None:
        proc.block_length, proc.stages = block_length, stages
    return types.SimpleNamespace(learning_rate=0.01, step=20, seeds=[seed], procedure=proc,
                                 domain='stimulus', modified_relu=modified_relu, log_every=10,
                                 initial_noise='uniform', network=types.SimpleNamespace(name='toy_audio'))


def _written(tmp_path, settings, synth):
    attrs = result_records.settings_attrs(settings, synth, settings.weights, SHA1)
    attrs['layer'] = 'relu1'
    return _part(tmp_path, attrs, key=results.result_key('relu1', settings.seed))


@pytest.mark.parametrize('made,synth,rerun,reused', [
    (dict(), dict(), dict(), True),
    (dict(iterations=None), dict(), dict(iterations=None), True),      # the default is stored as -1
    (dict(iterations=None), dict(), dict(), False),
    (dict(), dict(modified_relu=False), dict(modified_relu=False), True),
    (dict(), dict(modified_relu=False), dict(), False),
    (dict(procedure='feather2023', stage_iterations=100, stages=4),
     dict(procedure='feather2023', block_length=100, stages=4),
     dict(procedure='feather2023', stage_iterations=100, stages=4), True),
    (dict(procedure='feather2023', stage_iterations=100, stages=4),
     dict(procedure='feather2023', block_length=100, stages=4), dict(procedure='feather2023'), False),
    (dict(procedure='feather2023', stage_iterations=100, stages=4),
     dict(procedure='feather2023', block_length=100, stages=4),
     dict(procedure='feather2023', stage_iterations=100), False),
    (dict(procedure='feather2023'), dict(procedure='feather2023', block_length=3000, stages=8),
     dict(procedure='feather2023'), True),
])
def test_a_part_is_judged_by_the_settings_it_recorded(tmp_path, made, synth, rerun, reused):
    path = _written(tmp_path, _settings(**made), _synth(**synth))
    assert _reused(path, _settings(**rerun)) is reused


def test_retrained_weights_at_the_same_path_are_not_reused(tmp_path):
    path = _written(tmp_path, _settings(), _synth())
    assert _reused(path, _settings())
    assert not _reused(path, _settings(), weights_id='b' * 40)
    attrs = result_records.settings_attrs(_settings(), _synth(), WEIGHTS, SHA1)
    assert attrs['initial_noise'] == 'uniform' and attrs['network'] == 'toy_audio'


def test_a_part_from_before_the_relu_choice_was_made_with_the_modified_relu(tmp_path):
    attrs = _attrs()
    del attrs['modified_relu']   # the modified ReLU was the only choice then
    path = _part(tmp_path, attrs)
    assert _reused(path, _settings())
    assert not _reused(path, _settings(modified_relu=False))


def test_class_names_recorded_with_a_result():
    net = types.SimpleNamespace(class_names=['yes', 'no', 'up'])
    assert [result_records.class_name(net, k) for k in (0, np.int64(2), None, 3, -1)] == \
        ['yes', 'up', 'none', '3', '-1']
