"""Shared test set-up: quiet TensorFlow, paths to the shared reference data."""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Layers tested on their own (pooling, conv_0) are checked in full float32 on GPUs too: TensorFlow's
# default TensorFloat-32 on Ampere+ GPUs puts their matrix products ~1e-3 off (tfcochleagram.precision).
tf.config.experimental.enable_tensor_float_32_execution(False)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


REFERENCE_DIR = os.path.join(REPO, 'tests', 'reference')


@pytest.fixture(scope='session')
def reference_word():
    """Arrays computed by the original TF1 tfcochleagram (a copy of shared/reference)."""
    return dict(np.load(os.path.join(REFERENCE_DIR, 'tfcochleagram_original_word.npz')))
