"""One meaning of a ``weights`` argument: model_metamers.weights resolves 'default' and 'auto'."""

import os

import pytest

from model_metamers import weights
from model_metamers.networks.weights import checkpoints


@pytest.fixture
def checkpoint_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('MODEL_METAMERS_CHECKPOINT_DIR', str(tmp_path))
    return tmp_path


def _tf_checkpoint(prefix):
    import tensorflow as tf
    tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(prefix))


def test_default_is_the_converted_file_else_the_published_checkpoint(checkpoint_folder):
    converted = str(checkpoint_folder / 'vgg_19.weights.h5')
    assert weights.resolve_default('default', 'vgg_19') == converted
    assert weights.resolve_default('default', 'vgg_19', published_checkpoint='vgg_19.ckpt') == converted
    _tf_checkpoint(checkpoint_folder / 'vgg_19.ckpt')
    published = str(checkpoint_folder / 'vgg_19.ckpt')
    assert weights.resolve_default('default', 'vgg_19', published_checkpoint='vgg_19.ckpt') == published
    open(converted, 'wb').close()
    assert weights.resolve_default('default', 'vgg_19', published_checkpoint='vgg_19.ckpt') == converted


def test_other_words_and_paths_pass_through(checkpoint_folder):
    for value in ('random', None, 'auto', '/some/file.weights.h5'):
        assert weights.resolve_default(value, 'vgg_19') == value
    assert weights.is_random(None) and weights.is_random('random') and not weights.is_random('default')


def test_the_builders_use_the_same_meaning(checkpoint_folder):
    # checkpoints.weights_kind (every builder) reads 'default' through weights.resolve_default.
    with pytest.raises(checkpoints.CheckpointError, match=os.path.join(str(checkpoint_folder),
                                                                       'kws_2d.weights.h5')):
        checkpoints.weights_kind('default', 'kws_2d', 'TF1')
    assert checkpoints.checkpoint_dir() == weights.checkpoint_dir() == str(checkpoint_folder)
    assert checkpoints.weights_kind('random', 'kws_2d', 'TF1') == ('random', None)


def test_auto_falls_back_to_random_only_for_the_untrained_network(checkpoint_folder):
    assert weights.resolve_weights('word_reduced_aliasing_random', 'auto', log=lambda m: None) == 'random'
    assert weights.resolve_weights('word_reduced_aliasing', 'random') == 'random'
    with pytest.raises(checkpoints.CheckpointError, match='--weights=random'):
        weights.resolve_weights('word_reduced_aliasing', 'auto', log=lambda m: None)
