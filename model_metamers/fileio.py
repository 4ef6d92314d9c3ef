"""Atomic file writing: a result is either complete or absent, never half-written."""

import contextlib
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path, suffix=''):
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The folder is created if needed. The finished file gets the permissions a
    plain ``open(path, 'w')`` would give (``mkstemp`` alone makes it private).
    If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=suffix + '.tmp', dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Write a text file atomically (UTF-8, no newline translation)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)


def save_figure(fig, path, **kwargs):
    """Save a matplotlib figure as PNG atomically."""
    with atomic_path(path, '.png') as tmp:
        fig.savefig(tmp, format='png', **kwargs)
