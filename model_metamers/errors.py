"""The one family of "bad input from the user" errors (a leaf module: it imports nothing).

Every error a user can cause and fix (a bad flag, a missing or unreadable file,
a network name that is not registered, ...) subclasses :class:`UserError`; the
command-line start-up (:func:`model_metamers.cli.run`) prints one of them as one
line and exits 1. Each subclass also keeps its old built-in base (``ValueError``,
``OSError``, ``RuntimeError``), so ``except ValueError`` in callers still catches it.
"""


class UserError(Exception):
    """Bad input from the user: the message names the problem and the fix (printed as one line)."""


# What a command-line tool reports as one line: every UserError, and a file the user named
# that is not there (raised by open() and the HDF5 readers).
USER_ERRORS = (UserError, FileNotFoundError)


class GenerationError(UserError, ValueError):
    """Inconsistent generation settings (duplicate input names, bad shards, null without a layer).

    Defined here, not in :mod:`model_metamers.generation`, because the modules generation
    drives (stimuli, result records) raise it too; ``generation.GenerationError`` is this class.
    """
