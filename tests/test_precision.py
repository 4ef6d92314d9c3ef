"""TensorFloat-32 stays off for networks built here (GPU fidelity to the original)."""

import tensorflow as tf

import tfcochleagram
from model_metamers import networks
from tfcochleagram import precision


def test_building_a_network_turns_tf32_off(monkeypatch):
    monkeypatch.delenv(precision.ENV_SWITCH, raising=False)
    tf.config.experimental.enable_tensor_float_32_execution(True)
    try:
        networks.build('kws_2d', weights='random')
        assert not tf.config.experimental.tensor_float_32_execution_enabled()
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(False)


def test_a_cochleagram_graph_turns_tf32_off(monkeypatch):
    monkeypatch.delenv(precision.ENV_SWITCH, raising=False)
    tf.config.experimental.enable_tensor_float_32_execution(True)
    try:
        tfcochleagram.CochleagramGraph(2000, 20000, **tfcochleagram.WORD_CONFIG)
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
