"""Plain float32 arithmetic on GPUs, as the original ran.

On Ampere and newer NVIDIA GPUs (A100, H100, H200, ...) TensorFlow runs float32
matrix products and convolutions in TensorFloat-32 by default: inputs rounded
to a 10-bit mantissa, about 1e-3 relative error per product. The original code
ran on GPUs without that mode, and metamers are judged by how closely they
match activations, so a :class:`~tfcochleagram.CochleagramGraph` and every
network of ``model_metamers`` switch it off when they are built. Measured on an
H200 with it left on: cochleagrams 1e-3 (relative) away from the original's,
gradients further, in the strided downsampling and the separable pooling
(both matrix products). Set ``MODEL_METAMERS_TF32=1`` to keep TensorFlow's
default (faster on those GPUs, results no longer equal to the original's to
float32 round-off). CPUs are unaffected.
"""

import os

import tensorflow as tf

ENV_SWITCH = 'MODEL_METAMERS_TF32'


def tf32_requested():
    """True when the environment asks to keep TensorFloat-32 on."""
    return os.environ.get(ENV_SWITCH, '').strip().lower() in ('1', 'true', 'yes', 'on')


def use_full_float32():
    """Turn TensorFloat-32 off for this process unless ``MODEL_METAMERS_TF32=1``.

    Returns True when float32 products now run in full precision.
    """
    enabled = tf32_requested()
    tf.config.experimental.enable_tensor_float_32_execution(enabled)
    return not enabled
