"""The one start-up of the command-line tools (``python -m model_metamers.<tool>``, ``run_generation.py``).

Every command goes through :func:`run` (absl flags) or :func:`run_plain` (its
own parsing): TensorFlow's C++ start-up logs are quieted, the process restarts
once on tcmalloc when the machine has it (:mod:`model_metamers.allocator`), a
:class:`~model_metamers.errors.UserError` is printed as one line (exit 1), and
Ctrl-C prints one line (exit 130) instead of a traceback.
"""

import os
import signal
import sys

from model_metamers.errors import USER_ERRORS


def start_up():
    """Quiet TensorFlow's C++ start-up logs and restart on tcmalloc (before TF is imported).

    TensorFlow prints CUDA-plugin lines on CPU machines that would bury one-line
    error messages; set ``TF_CPP_MIN_LOG_LEVEL=0`` to see them.
    """
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    from model_metamers.allocator import use_tcmalloc

    use_tcmalloc()  # restarts this command once on tcmalloc when the machine has it


def interrupted(exc):
    """Whether ``exc`` is Ctrl-C, also as the ImportError a C extension's init turns it into."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def guarded(main, interrupted_hint=None):
    """``main(argv)`` returning its exit status, with the tools' shared handling of errors.

    A user error is printed as ``error: <message>`` (one line, status 1); Ctrl-C as
    ``interrupted`` (with ``interrupted_hint`` after a colon, status 130). Other
    exceptions are bugs and keep their traceback.
    """
    def guarded_main(argv):
        from model_metamers import interrupts

        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            interrupts.install()  # a tool's own start-up handler (run_generation) stays until it switches
        try:
            try:
                return main(argv)
            except USER_ERRORS as exc:
                print('error: %s' % str(exc).strip(), file=sys.stderr)
                return 1
        except (KeyboardInterrupt, ImportError) as exc:
            if not interrupted(exc):
                raise
            print('\ninterrupted' + (': %s' % interrupted_hint if interrupted_hint else ''),
                  file=sys.stderr)
            return 130
    return guarded_main


def run(main, define_flags=None, example='--layer=conv_0', interrupted_hint=None):
    """Start up, define the tool's absl flags, run ``main(argv)`` and exit with its status.

    Words after the program that are not flags are an error (see
    :func:`unexpected_arguments`); a leading ``~`` in flags is expanded.
    """
    start_up()
    if define_flags is not None:
        define_flags()

    def checked_main(argv):
        if unexpected_arguments(argv, example=example):
            return 1
        expand_home()
        return main(argv)

    run_absl(lambda argv: sys.exit(guarded(checked_main, interrupted_hint)(argv)))


def run_plain(main, argv=None, interrupted_hint=None):
    """Start up and exit with ``main(argv)`` for a tool that parses its own arguments."""
    start_up()
    sys.exit(guarded(main, interrupted_hint)(list(sys.argv if argv is None else argv)))


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
