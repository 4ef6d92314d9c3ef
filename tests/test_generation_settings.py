"""What a run accepts, which null it picks and which jobs a shard gets (issue 25, mutation testing).

These call the small deciding functions of ``generation`` directly, so they take no network and
run in milliseconds; ``test_generation.py`` checks the same rules end to end on a refused value.
"""

import os

import pytest

from model_metamers.generation import (
    GenerationError,
    GenerationSettings,
    check_settings,
    check_writable,
    network_folder,
    plan_jobs,
    resolve_null,
)


def _ok(**kw):
    check_settings(GenerationSettings(**kw))


def test_the_edge_values_of_each_setting_are_accepted():
    # Every bound is inclusive where the message says so: the last value still allowed runs.
    _ok(seed=0)
    _ok(seed=2 ** 32 - 1)
    _ok(batch_size=1)
    _ok(iterations=0)
    _ok(learning_rate=1e-12)
    _ok(log_every=0)
    _ok(log_every=0, stop_window=7)  # no log: stop_window need not be a multiple of anything
    _ok(log_every=10, stop_window=30)
    _ok(stop_threshold=0.0)
    _ok(checkpoint_every=1, stop_window=1, log_every=1)
    _ok(procedure='feather2023', stage_iterations=1, stages=1)
    _ok(num_shards=1, shard_index=0)
    _ok(num_shards=3, shard_index=2)


@pytest.mark.parametrize('kw,message', [
    (dict(seed=2 ** 32), '--seed must be in 0 .. 2**32-1, got 4294967296; pass e.g. --seed=0'),
    (dict(learning_rate=0.0), '--learning_rate must be a positive number, got 0.0'),
    (dict(learning_rate=float('inf')), '--learning_rate must be a positive number, got inf'),
    (dict(stop_threshold=float('nan')), '--stop_threshold must be 0 or more, got nan'),
    (dict(stage_iterations=0, procedure='feather2023'), '--stage_iterations must be at least 1, got 0'),
    (dict(stages=0, procedure='feather2023'), '--stages must be at least 1, got 0'),
    (dict(num_shards=3, shard_index=3), '--shard_index must be in 0 .. 2 for --num_shards=3, got 3'),
    (dict(log_every=10, stop_window=25), '--stop_window must be a multiple of --log_every=10, got 25'),
    (dict(stages=2), '--stage_iterations and --stages set the schedule of --procedure=feather2023'),
    (dict(stage_iterations=100), '--stage_iterations and --stages set the schedule of --procedure=feather2023'),
])
def test_values_just_past_the_edges_are_refused_with_the_fix(kw, message):
    with pytest.raises(GenerationError) as err:
        check_settings(GenerationSettings(**kw))
    assert str(err.value).startswith(message)
    assert '\n' not in str(err.value)


def test_plan_jobs_deals_the_input_major_job_list_round_robin():
    # Jobs, input by input: (0,a) (0,b) (1,a) (1,b) (2,a) (2,b); shard k of 4 takes jobs k, k+4.
    assert plan_jobs(3, ['a', 'b']) == [(0, 'a'), (0, 'b'), (1, 'a'), (1, 'b'), (2, 'a'), (2, 'b')]
    assert plan_jobs(3, ['a', 'b'], 4, 0) == [(0, 'a'), (2, 'a')]
    assert plan_jobs(3, ['a', 'b'], 4, 1) == [(0, 'b'), (2, 'b')]
    assert plan_jobs(3, ['a', 'b'], 4, 3) == [(1, 'b')]
    assert plan_jobs(1, ['a'], 2, 1) == []
    for num_shards, shard_index in ((0, 0), (2, -1), (2, 2)):
        with pytest.raises(GenerationError, match='need num_shards >= 1 and 0 <= shard_index < '
                                                  'num_shards, got %d and %d' % (num_shards, shard_index)):
            plan_jobs(3, ['a'], num_shards, shard_index)


def test_resolve_null_none_a_path_or_what_auto_finds(tmp_path, monkeypatch):
    said = []
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', str(tmp_path))
    for value in (None, '', 'none', 'None', 'NONE'):
        assert resolve_null('toy_audio', value, said.append) is None
    assert said == []  # no null asked for: nothing to say
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert resolve_null('toy_audio', '~/n.h5', said.append) == str(tmp_path / 'home' / 'n.h5')
    # 'auto' with nothing there: no null, and the log says where it looked and what that means.
    assert resolve_null('toy_audio', 'auto', said.append) is None
    assert said == ['no null distribution for toy_audio (%s, or the release\'s pickle): metamers are '
                    'validated by the predicted class only, not by the paper\'s criterion'
                    % (tmp_path / 'toy_audio.null.h5')]
    # 'auto' with the network's null in the checkpoint folder: that file, said once.
    (tmp_path / 'toy_audio.null.h5').write_bytes(b'')
    (tmp_path / 'other.null.h5').write_bytes(b'')
    said.clear()
    assert resolve_null('toy_audio', 'auto', said.append) == str(tmp_path / 'toy_audio.null.h5')
    assert said == ['null distribution: %s' % (tmp_path / 'toy_audio.null.h5')]
    # A user's model: 'auto' looks only at the file given as default, not the checkpoint folder.
    said.clear()
    mine = tmp_path / 'mine.null.h5'
    assert resolve_null('toy_audio', 'auto', said.append, default=str(mine)) is None
    assert said[0].startswith('no null distribution for toy_audio (%s): ' % mine)
    mine.write_bytes(b'')
    assert resolve_null('toy_audio', 'auto', said.append, default=str(mine)) == str(mine)
    # A folder of the network's name is no null file.
    os.remove(tmp_path / 'toy_audio.null.h5')
    os.mkdir(tmp_path / 'toy_audio.null.h5')
    assert resolve_null('toy_audio', 'auto', said.append) is None


def test_network_folder_is_the_output_dir_and_the_network_name(tmp_path):
    assert network_folder(GenerationSettings(network='kws_2d', output_dir='out')) == os.path.join('out', 'kws_2d')
    model = tmp_path / 'my net.keras'
    assert (network_folder(GenerationSettings(network=str(model), output_dir='out'))
            == os.path.join('out', 'my_net'))


def test_check_writable_judges_a_new_folder_by_its_nearest_existing_parent(tmp_path):
    check_writable([(str(tmp_path / 'a' / 'b' / 'c'), '--output_dir')])
    assert not (tmp_path / 'a').exists()  # checking writes nothing that stays
    assert os.listdir(tmp_path) == []
    (tmp_path / 'f').write_text('x')
    with pytest.raises(GenerationError) as err:
        check_writable([(str(tmp_path / 'ok'), '--output_dir'), (str(tmp_path / 'f' / 'g'), '--tensorboard_dir')])
    assert str(err.value) == ('cannot create the folder %s: %s is a file, not a folder; move it away or '
                              'choose another --tensorboard_dir' % (tmp_path / 'f' / 'g', tmp_path / 'f'))


def test_resolve_null_says_what_it_found_on_stderr_without_a_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', str(tmp_path))
    assert resolve_null('toy_audio', 'auto') is None
    assert capsys.readouterr().err.startswith('no null distribution for toy_audio (')
