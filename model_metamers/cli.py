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
    app.run(lambda argv: sys.exit(unexpected_arguments(argv) or main(argv)))


def unexpected_arguments(argv, example='--layer=conv_0', status=1):
    """``status`` with a one-line error when ``argv`` has words after the program; else 0.

    absl leaves anything that is not a flag in ``argv``; silently ignoring it would
    run, say, ``layer=conv_0`` (a flag without its dashes) with the default layer.
    """
    if len(argv) <= 1:
        return 0
    print('error: unexpected argument(s) %s; every option is a flag, e.g. %s (see --help)'
          % (' '.join(argv[1:]), example), file=sys.stderr)
    return status
