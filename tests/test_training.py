"""Training pipeline: learning, early stopping, AUC, two heads, resume, TFRecords, augmentation."""

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io.wavfile
import tensorflow as tf

from model_metamers import networks
from model_metamers.training import augment, checkpointing, data, metrics
from model_metamers.training.loop import TrainConfig, Trainer, TrainError, train
from model_metamers.training.tasks import tasks_for
from tests import training_toys
from tests.conftest import REPO


@pytest.fixture(scope='module')
def tones(tmp_path_factory):
    return training_toys.tone_dataset(str(tmp_path_factory.mktemp('tones')))


def _config(tmp_path, data_dir, **kw):
    base = dict(network='toy_tone', data=data_dir, output_dir=str(tmp_path / 'run'), epochs=6,
                batch_size=8, learning_rate=0.02, patience=0, seed=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize('field,value,message', [
    ('epochs', 0, '--epochs must be at least 1'),
    ('batch_size', 0, '--batch_size must be at least 1'),
    ('learning_rate', -1e-3, '--learning_rate must be 0 or more'),
    ('learning_rate', float('nan'), '--learning_rate must be 0 or more'),
    ('seed', -2, '--seed must be 0 or more'),
    ('patience', -1, '--patience must be 0'),
    ('max_shift_s', -0.1, '--max_shift_s must be 0 or more'),
    ('snr_low', 20.0, '--snr_high must be at least --snr_low'),
    ('max_steps_per_epoch', 0, '--max_steps_per_epoch must be at least 1'),
    ('target_accuracy', 1.5, '--target_accuracy must be in'),
])
def test_bad_numbers_are_refused_before_anything_is_loaded(tmp_path, field, value, message):
    config = _config(tmp_path, str(tmp_path / 'no_data_here'), **{field: value})
    with pytest.raises(TrainError, match=message + '.*pass e.g. --'):
        Trainer(config, log=None)
    assert not (tmp_path / 'run').exists()


def test_learns_a_separable_task(tmp_path, tones):
    state = train(_config(tmp_path, tones), log=None)
    history = state['history']
    assert len(history) == 6 and state['stopped'] == 'epochs'
    assert history[-1]['train_loss'] < 0.5 * history[0]['train_loss']
    assert history[0]['word_accuracy'] < 0.9 <= max(h['word_accuracy'] for h in history)
    assert state['final']['test']['word_accuracy'] >= 0.75  # chance is 0.25
    paths = checkpointing.paths(str(tmp_path / 'run'), 'toy_tone')
    best = networks.build('toy_tone', weights=paths['best'])  # loadable by the registry
    assert best.model.get_layer('hidden').kernel.shape == (1001, 16)


def test_early_stopping_at_target_and_on_patience(tmp_path, tones):
    state = train(_config(tmp_path, tones, target_accuracy=0.0), log=None)
    assert state['stopped'] == 'target' and state['epochs_done'] == 1
    # learning rate 0: the score never improves, so patience 2 stops after epoch 3
    state = train(_config(tmp_path, tones, output_dir=str(tmp_path / 'p'), learning_rate=0.0,
                          patience=2), log=None)
    assert state['stopped'] == 'patience' and state['epochs_done'] == 3 and state['best_epoch'] == 1


def _auc_by_pairs(pos, scores):
    p, n = scores[pos], scores[~pos]
    wins = sum((a > b) + 0.5 * (a == b) for a, b in itertools.product(p, n))
    return wins / (len(p) * len(n))


def test_mean_auc_matches_a_direct_computation():
    rng = np.random.RandomState(0)
    targets = rng.rand(40, 5) < 0.3
    targets[:, 4] = False  # a class with no positive is left out of the mean
    scores = np.round(rng.randn(40, 5) + targets, 1)  # rounding makes ties
    direct = np.mean([_auc_by_pairs(targets[:, c], scores[:, c]) for c in range(4)])
    assert metrics.mean_auc(targets, scores) == pytest.approx(direct, abs=1e-12)
    assert metrics.roc_auc(targets[:, 4], scores[:, 4]) != metrics.roc_auc(targets[:, 4], scores[:, 4])
    assert metrics.mean_auc(np.eye(3), np.eye(3)) == 1.0
    assert metrics.accuracy([0, 1, 2], np.eye(3)[[0, 2, 2]]) == pytest.approx(2 / 3)


def test_two_heads_train_one_step(tmp_path, tones):
    trainer = Trainer(_config(tmp_path, tones, network='toy_two_heads', epochs=1,
                              max_steps_per_epoch=1), log=None)
    assert [(t.name, t.kind) for t in trainer.tasks] == [('word', 'softmax'), ('audioset', 'sigmoid')]
    before = trainer.net.model.get_layer('head_audioset').kernel.numpy().copy()
    state = trainer.run()
    after = trainer.net.model.get_layer('head_audioset').kernel.numpy()
    assert not np.allclose(before, after) and np.isfinite(state['history'][0]['train_loss'])
    val = state['history'][0]
    logits = trainer.predict('val')
    targets = trainer.splits['val'][1]
    assert targets['audioset'].shape == (12, 3) and targets['audioset'][0].tolist() == [1, 0, 0]
    tags = targets['audioset'].astype(bool)
    direct = np.mean([_auc_by_pairs(tags[:, c], logits['audioset'][:, c]) for c in range(tags.shape[1])
                      if tags[:, c].any() and not tags[:, c].all()])
    assert val['audioset_mean_auc'] == pytest.approx(direct, abs=1e-6)
    assert 0 <= val['word_accuracy'] <= 1


def test_mirrored_strategy_runs(tmp_path, tones):
    state = train(_config(tmp_path, tones, network='toy_two_heads', strategy='mirrored', epochs=1,
                          max_steps_per_epoch=2), log=None)
    assert state['epochs_done'] == 1 and np.isfinite(state['history'][0]['train_loss'])
    with pytest.raises(ValueError, match='--strategy must be one of'):
        Trainer(_config(tmp_path, tones, strategy='tpu'), log=None)


def test_resume_continues_exactly(tmp_path, tones):
    full = train(_config(tmp_path, tones, output_dir=str(tmp_path / 'full'), epochs=3), log=None)
    train(_config(tmp_path, tones, output_dir=str(tmp_path / 'split'), epochs=2), log=None)
    messages = []
    resumed = train(_config(tmp_path, tones, output_dir=str(tmp_path / 'split'), epochs=3),
                    log=messages.append)
    assert any('resuming toy_tone after epoch 2' in m for m in messages)
    assert [h['epoch'] for h in resumed['history']] == [1, 2, 3]
    a = networks.build('toy_tone', weights=checkpointing.paths(str(tmp_path / 'full'), 'toy_tone')['last'])
    b = networks.build('toy_tone', weights=checkpointing.paths(str(tmp_path / 'split'), 'toy_tone')['last'])
    for va, vb in zip(a.model.weights, b.model.weights):
        np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-5, atol=1e-6)
    assert resumed['history'][2]['loss'] == pytest.approx(full['history'][2]['loss'], rel=1e-4)


def test_tfrecord_round_trip(tmp_path, tones):
    net = networks.build('toy_two_heads')
    tasks = tasks_for(net)
    counts = data.write_tfrecords(tones, str(tmp_path / 'tfr'), net, tasks, clips_per_shard=5)
    assert counts == {'train': 32, 'val': 12, 'test': 8}
    assert len(data.tfrecord_files(str(tmp_path / 'tfr'), 'train')) == 7
    for split in ('train', 'val'):
        x1, y1 = data.to_numpy(data.dataset(tones, split, net, tasks)[0])
        ds, n = data.dataset(str(tmp_path / 'tfr'), split, net, tasks)
        x2, y2 = data.to_numpy(ds)
        assert n == len(x1)
        np.testing.assert_array_equal(x1, x2)
        for t in tasks:
            np.testing.assert_array_equal(y1[t.name], y2[t.name])
    assert np.sqrt(np.mean(x1[0] ** 2)) == pytest.approx(0.1, rel=1e-4)


def test_csv_label_errors(tmp_path, tones):
    net = networks.build('toy_two_heads')
    folder = tmp_path / 'bad'
    folder.mkdir()
    (folder / 'labels.csv').write_text('path,label,split\nwavs/000.wav,w0,train\n')
    with pytest.raises(data.DataError, match='no column label_word'):
        data.read_labels(str(folder), tasks_for(net), 'train')
    (folder / 'labels.csv').write_text('path,label,split\nwavs/000.wav,banana,train\n')
    with pytest.raises(data.DataError, match="label 'banana' is not a class of task word"):
        data.read_labels(str(folder), tasks_for(networks.build('toy_tone')), 'train')


def test_missing_and_unreadable_clips_are_one_line_errors(tmp_path):
    net = networks.build('toy_tone')
    folder = tmp_path / 'clips'
    (folder / 'wavs').mkdir(parents=True)
    scipy.io.wavfile.write(folder / 'wavs' / 'ok.wav', 2000, np.sin(np.arange(400) / 3.0).astype(np.float32))
    (folder / 'wavs' / 'text.wav').write_text('not a sound')
    (folder / 'labels.csv').write_text('path,label,split\nwavs/ok.wav,w0,train\nwavs/gone.wav,w1,train\n')
    with pytest.raises(data.DataError, match='1 clip\\(s\\) of the train split .* do not exist, e.g. '
                                             '.*gone.wav \\(line 3\\)'):
        data.read_labels(str(folder), tasks_for(net), 'train')
    (folder / 'labels.csv').write_text('path,label,split\nwavs/ok.wav,w0,train\nwavs/text.wav,w1,train\n')
    ds, n = data.dataset(str(folder), 'train', net, tasks_for(net))
    assert n == 2
    with pytest.raises(data.DataError, match='^cannot read .*text.wav as WAV') as err:
        data.to_numpy(ds)
    assert len(str(err.value).splitlines()) == 1


def test_augmentation_mixes_at_the_snr_range():
    n = 2000
    t = np.arange(n) / 2000.0
    speech = (np.sin(2 * np.pi * 50 * t) * 0.1 * np.sqrt(2)).astype(np.float32)
    bg = np.sin(2 * np.pi * 300 * t)[None].astype(np.float32)
    mix = augment.make_mixer(bg, np.array([n], np.int32), n, max_shift=0, seed=1)
    snrs = []
    for index in range(20):
        y = mix(tf.constant(speech), 1, index).numpy()
        assert np.sqrt(np.mean(y ** 2)) == pytest.approx(0.1, rel=1e-3)
        (a, b), *_ = np.linalg.lstsq(np.stack([speech, bg[0]], 1), y, rcond=None)
        snrs.append(20 * np.log10(abs(a) * np.std(speech) / (abs(b) * np.std(bg[0]))))
    assert -10 <= min(snrs) < -2 and 2 < max(snrs) <= 10
    np.testing.assert_array_equal(mix(tf.constant(speech), 1, 3), mix(tf.constant(speech), 1, 3))
    assert not np.allclose(mix(tf.constant(speech), 1, 3), mix(tf.constant(speech), 2, 3))
    shifted = augment.make_mixer(bg * 0 + 1e-6, np.array([n], np.int32), n, max_shift=200, seed=1)
    y = shifted(tf.constant(speech), 0, 0).numpy()
    assert np.max(np.abs(np.correlate(y, speech, 'full'))) > 0  # still the speech, moved


def test_augmented_training_uses_background_clips(tmp_path, tones):
    bgdir = tmp_path / 'bg'
    bgdir.mkdir()
    scipy.io.wavfile.write(str(bgdir / 'noise.wav'), 4000,
                           np.random.RandomState(0).randn(12000).astype(np.float32))
    messages = []
    trainer = Trainer(_config(tmp_path, tones, background_dir=str(bgdir), epochs=1), log=messages.append)
    assert trainer.augmenting and trainer.cache_stage is None
    assert any('1 background clips' in m for m in messages)
    x0 = next(iter(trainer._dataset('val', 0, training=False)))[0].numpy()
    assert not np.allclose(x0, trainer.splits['val'][0][:len(x0)])  # validation clips are mixed
    x_test = next(iter(trainer._dataset('test', 0, training=False)))[0].numpy()
    np.testing.assert_array_equal(x_test, trainer.splits['test'][0][:len(x_test)])


def test_kws_training_adapts_normalization_and_caches(tmp_path):
    folder = tmp_path / 'kws'
    (folder / 'wavs').mkdir(parents=True)
    rng = np.random.RandomState(0)
    lines = ['path,label,split']
    for i in range(24):
        word = ['yes', 'no'][i % 2]
        t = np.arange(16000) / 16000.0
        x = np.sin(2 * np.pi * (300 if word == 'yes' else 2000) * t) + 0.5 * rng.randn(16000)
        scipy.io.wavfile.write(str(folder / 'wavs' / ('%02d.wav' % i)), 16000,
                               (0.05 * x).astype(np.float32))
        lines.append('wavs/%02d.wav,%s,%s' % (i, word, 'train' if i < 16 else 'val'))
    (folder / 'labels.csv').write_text('\n'.join(lines) + '\n')
    messages = []
    state = train(TrainConfig(network='kws_2d', data=str(folder), output_dir=str(tmp_path / 'out'),
                              epochs=2, batch_size=8, patience=0), log=messages.append)
    assert any('front end cached at stage resize' in m for m in messages)
    net = networks.build('kws_2d', weights=str(tmp_path / 'out' / 'kws_2d.weights.h5'))
    norm = net.model.get_layer('normalization')
    assert norm.mean.numpy()[0] > 0.1 and norm.variance.numpy()[0] != 1.0
    assert state['final']['val']['keyword_accuracy'] >= 0.5
    saved = json.load(open(str(tmp_path / 'out' / 'kws_2d.train_state.json')))
    assert saved['epochs_done'] == 2 and saved['settings']['network'] == 'kws_2d'


def test_cli_reports_a_missing_data_folder_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, '-m', 'model_metamers.train', '--network=kws_2d',
                           '--data=%s' % (tmp_path / 'nothing')], cwd=REPO, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith('error: data folder')
    assert 'model_metamers.spoken_words' in done.stderr


@pytest.mark.slow
def test_word_audioset_network_trains_one_step(tmp_path):
    from model_metamers.networks.audio import audio_cnn
    folder = tmp_path / 'wa'
    (folder / 'wavs').mkdir(parents=True)
    rng = np.random.RandomState(0)
    lines = ['path,label_word,label_audioset,split']
    for i in range(4):
        scipy.io.wavfile.write(str(folder / 'wavs' / ('%d.wav' % i)), 20000,
                               (0.1 * rng.randn(40000)).astype(np.float32))
        lines.append('wavs/%d.wav,%d,%d;%d,%s' % (i, i + 1, i, i + 5, 'train' if i < 2 else 'val'))
    (folder / 'labels.csv').write_text('\n'.join(lines) + '\n')
    state = train(TrainConfig(network='word_audioset_reduced_aliasing', data=str(folder),
                              output_dir=str(tmp_path / 'o'), epochs=1, batch_size=2,
                              max_steps_per_epoch=1, cache_front_end='off'), log=None)
    assert np.isfinite(state['history'][0]['train_loss'])
    assert 'audioset_mean_auc' in state['history'][0] and audio_cnn.N_CLASSES['audioset'] == 517


def test_a_resume_with_other_settings_names_the_keys_that_differ(tmp_path, tones):
    train(_config(tmp_path, tones, epochs=1), log=None)
    with pytest.raises(TrainError) as info:
        train(_config(tmp_path, tones, epochs=2, learning_rate=0.05, seed=3), log=None)
    message = str(info.value)
    assert '--learning_rate was 0.02, now 0.05' in message and '--seed was 0, now 3' in message
    assert 'batch_size' not in message and "'network'" not in message  # only what differs
    assert '--noresume' in message


def test_ctrl_c_says_where_training_stopped_and_how_to_resume(tmp_path, tones):
    import signal
    import time

    code = ('import sys; sys.argv = ["train"] + sys.argv[1:]; import tests.training_toys; '
            'from model_metamers import cli, train; cli.run(train.main, train._define_flags)')
    out = tmp_path / 'run'
    proc = subprocess.Popen([sys.executable, '-c', code, '--network=toy_tone', '--data=%s' % tones,
                             '--output_dir=%s' % out, '--epochs=100000', '--patience=0', '--batch_size=8'],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = checkpointing.paths(str(out), 'toy_tone')['state']
    deadline = time.time() + 120
    while not os.path.exists(state) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr
    done = json.load(open(state))['epochs_done']
    assert stderr.strip().splitlines()[-1] == (
        'interrupted: toy_tone stopped during epoch %d; the run up to epoch %d is saved in %s. Run the '
        'same command to resume after epoch %d' % (done + 1, done, out, done))
