"""Shared start-up of the command-line tools (``python -m model_metamers.<tool>``)."""

import os
import sys


def run(main, define_flags):
    """Define the tool's absl flags, quiet TensorFlow's C++ start-up logs, run ``main``.

    ``main(argv)`` returns the exit status. TensorFlow prints CUDA-plugin lines
    on CPU machines that would bury one-line error messages; set
    ``TF_CPP_MIN_LOG_LEVEL=0`` to see them. The process restarts once on
    tcmalloc when the machine has it (see :mod:`model_metamers.allocator`).
    """
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    from absl import app

    from model_metamers.allocator import use_tcmalloc

    use_tcmalloc()  # restarts this command once on tcmalloc when the machine has it

    define_flags()
    app.run(lambda argv: sys.exit(main(argv)))
