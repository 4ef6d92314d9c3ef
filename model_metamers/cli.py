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
    from model_metamers.allocator import use_tcmalloc

    use_tcmalloc()  # restarts this command once on tcmalloc when the machine has it

    define_flags()

    def checked_main(argv):
        if unexpected_arguments(argv):
            return 1
        expand_home()
        return main(argv)

    run_absl(lambda argv: sys.exit(checked_main(argv)))


HELP_FLAGS = ('-h', '-?', '--help', '--helpshort', '--helpfull', '--helpxml')


def run_absl(main):
    """``absl.app.run(main)``, except that ``--help`` and its kin exit 0 (absl exits 1)."""
    from absl import app

    try:
        app.run(main)
    except SystemExit as exc:
        if exc.code == 1 and any(a in HELP_FLAGS for a in sys.argv[1:]):
            sys.exit(0)
        raise


def expand_home(flag_values=None):
    """Expand a leading ``~`` in every string flag and in each item of a comma-separated one.

    The shell leaves ``--output_dir=~/metamers`` as it is (``~`` is expanded only at the start
    of a word), which would make a folder named ``~`` in the working directory.
    """
    from absl import flags

    flag_values = flag_values if flag_values is not None else flags.FLAGS
    for name in list(flag_values):
        value = flag_values[name].value
        if isinstance(value, str) and '~' in value:
            expanded = ','.join(os.path.expanduser(item) if item.startswith('~') else item
                                for item in value.split(','))
            if expanded != value:
                flag_values[name].value = expanded


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
