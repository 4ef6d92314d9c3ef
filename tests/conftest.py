"""Shared test set-up: quiet TensorFlow, paths to the shared reference data."""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


REFERENCE_DIR = os.path.join(REPO, 'tests', 'reference')


@pytest.fixture(scope='session')
def reference_word():
    """Arrays computed by the original TF1 tfcochleagram (a copy of shared/reference)."""
    return dict(np.load(os.path.join(REFERENCE_DIR, 'tfcochleagram_original_word.npz')))
