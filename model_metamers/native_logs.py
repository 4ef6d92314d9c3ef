"""Keep XLA's start-up log lines off the terminal when TF_CPP_MIN_LOG_LEVEL asks for quiet.

TensorFlow 2.17 applies ``TF_CPP_MIN_LOG_LEVEL`` to its own C++ logging only. XLA
logs through its own copy of Abseil, which ignores it: the first XLA compilation
of a process prints ``WARNING: All log messages before absl::InitializeLog() ...``,
``I0000 ... XLA service ... initialized`` and ``I0000 ... Compiled cluster using
XLA!`` (the latter "at most once for the lifetime of the process"). That copy's
log level cannot be reached from Python (its setter is not exported), so the
first compilation is done here, on a one-element function, with the process's
standard error pointed at /dev/null for those few milliseconds.
"""

import os
import sys


def quiet_native_logs():
    """Compile a trivial XLA function with stderr silenced, if ``TF_CPP_MIN_LOG_LEVEL`` >= 1.

    Returns True when it did. Call once at the start of a command-line tool
    (it imports TensorFlow); later compilations log nothing more at INFO level.
    """
    try:
        level = int(os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0'))
    except ValueError:
        return False
    if level < 1:
        return False
    import tensorflow as tf

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        tf.function(lambda x: x + 1, jit_compile=True)(tf.zeros([1]))
    except Exception:  # noqa: BLE001 (a machine without XLA: nothing to quiet)
        return False
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return True
