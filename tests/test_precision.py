"""TensorFloat-32 stays off for networks and cochleagrams built here (GPU fidelity to the original)."""

import pytest
import tensorflow as tf

import tfcochleagram
from model_metamers import networks
from tfcochleagram import precision


def _build_through_registry(monkeypatch):
    # A builder that does nothing itself: only networks.build() can switch TF32 off (every
    # real audio network would also do it through its CochleagramGraph).
    monkeypatch.setattr(networks, 'get_builder', lambda name: lambda **kwargs: None)
    networks.build('vgg_19', weights='random')


def _build_cochleagram(monkeypatch):
    tfcochleagram.CochleagramGraph(2000, 20000, **tfcochleagram.WORD_CONFIG)


@pytest.mark.parametrize('build', [_build_through_registry, _build_cochleagram])
def test_building_turns_tf32_off(build, monkeypatch):
    monkeypatch.delenv(precision.ENV_SWITCH, raising=False)
    tf.config.experimental.enable_tensor_float_32_execution(True)
    try:
        build(monkeypatch)
        assert not tf.config.experimental.tensor_float_32_execution_enabled()
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(False)


def test_environment_switch_keeps_tf32(monkeypatch):
    monkeypatch.setenv(precision.ENV_SWITCH, '1')
    try:
        assert precision.use_full_float32() is False
        assert tf.config.experimental.tensor_float_32_execution_enabled()
    finally:
        monkeypatch.delenv(precision.ENV_SWITCH)
        assert precision.use_full_float32() is True
    assert not tf.config.experimental.tensor_float_32_execution_enabled()


@pytest.mark.parametrize('value,keep', [('1', True), ('true', True), (' Yes ', True), ('ON', True),
                                        ('', False), ('0', False), ('false', False), ('no', False)])
def test_which_values_of_the_switch_keep_tf32(value, keep, monkeypatch):
    """``MODEL_METAMERS_TF32``: 1/true/yes/on (any case, spaces around) keep TensorFloat-32;
    anything else, or no variable, turns it off."""
    monkeypatch.setenv(precision.ENV_SWITCH, value)
    assert precision.ENV_SWITCH == 'MODEL_METAMERS_TF32'  # the name the README documents
    assert precision.tf32_requested() is keep
    monkeypatch.delenv(precision.ENV_SWITCH)
    assert precision.tf32_requested() is False
