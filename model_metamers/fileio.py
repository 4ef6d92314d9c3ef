"""Atomic file writing: a result is either complete or absent, never half-written.

Temporary files are named ``tmp~<host>~<pid>~<random><suffix>.tmp`` beside their
target, so that a later run can tell the leftovers of a killed process
(:func:`remove_stale_temp_files`) from the files a live one is writing.
"""

import contextlib
import errno
import io
import os
import socket
import tempfile
import time

from model_metamers.errors import UserError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
_HOST = socket.gethostname().replace('~', '-')
# A temporary file lives for seconds (written whole, then renamed); one older than this whose
# writer cannot be checked (another host, or a name without host and pid) is a leftover.
STALE_AFTER_S = 3600
_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(UserError, OSError):
    """The disk (or quota) filled up while writing ``path``; nothing was left half-written."""

    def __init__(self, path):
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        self.path = path

    def __str__(self):
        return ('disk full while writing %s; free space and run the same command to resume'
                % self.path)


def is_disk_full(exc):
    """Whether an exception is the disk or quota filling up."""
    return isinstance(exc, OSError) and exc.errno in _FULL


@contextlib.contextmanager
def atomic_path(path, suffix=''):
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The folder is created if needed. The finished file gets the permissions a
    plain ``open(path, 'w')`` would give (``mkstemp`` alone makes it private).
    If the block raises, the temporary file is removed and ``path`` is untouched;
    a full disk (ENOSPC, EDQUOT) is raised as :class:`DiskFullError` naming ``path``.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='tmp~%s~%d~' % (_HOST, os.getpid()),
                                   suffix=suffix + '.tmp', dir=directory)
        os.close(fd)
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(path) from None
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    with atomic_path(path, os.path.splitext(path)[1]) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)


def decoded(value):
    """``value`` as read from HDF5 with byte strings made ``str`` (scalars, and arrays of kind 'S').

    Readers of result, null and weight files use it instead of decoding by hand.
    """
    if isinstance(value, bytes):  # also numpy.bytes_
        return value.decode()
    if getattr(value, 'dtype', None) is not None and value.dtype.kind == 'S':
        import numpy as np  # fileio itself needs no numpy
        return np.char.decode(value, 'utf-8')
    return value


def hash_file(path, digest=None):
    """``digest`` (a new SHA-1 by default) updated with the bytes of the file at ``path``, read in blocks."""
    import hashlib

    digest = digest if digest is not None else hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    return digest


# HDF5 takes '/' in a name as a path: layer names with '/' (a nested model's ``outer/inner``) are
# stored with this character instead, and read back with '/'.
H5_SLASH = '|'


def h5_name(key):
    """The HDF5 group name of a layer (or result key) ``key``: '/' written as ``H5_SLASH``."""
    return str(key).replace('/', H5_SLASH)


def key_of_h5_name(name):
    """The layer (or result key) an HDF5 group name :func:`h5_name` wrote stands for."""
    return str(name).replace(H5_SLASH, '/')


def write_h5(path, writer):
    """Write an HDF5 file atomically: ``writer(h5py.File)`` fills it.

    The file is built in memory and then written with plain file writes: the
    HDF5 library meeting a full disk itself printed pages of errors and could
    crash the process; this way a full disk is one :class:`DiskFullError`.
    Result and state files are small (megabytes).
    """
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, 'w') as f:
        writer(f)
    write_bytes(path, buffer.getvalue())


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temp_files(folder, max_age_s=STALE_AFTER_S):
    """Remove the temporary files a killed writer left in ``folder``; returns their paths.

    A temporary file of this host whose process has ended is stale at once; one of
    another host (a shared cluster folder), or of an older naming without host and
    pid, when it is older than ``max_age_s``. Files a live process is writing are
    kept, so concurrent runs on one folder are safe. Unremovable files are left.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    now = time.time()
    for name in names:
        if not (name.startswith('tmp') and name.endswith('.tmp')):
            continue
        path = os.path.join(folder, name)
        parts = name.split('~')
        try:
            if len(parts) >= 4 and parts[1] == _HOST and parts[2].isdigit():
                stale = not _alive(int(parts[2]))
            else:
                stale = now - os.path.getmtime(path) > max_age_s
            if stale and os.path.isfile(path):
                os.remove(path)
                removed.append(path)
        except OSError:
            continue
    return removed


def write_text(path, text):
    """Write a text file atomically (UTF-8, no newline translation)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)


def save_figure(fig, path, **kwargs):
    """Save a matplotlib figure as PNG atomically."""
    with atomic_path(path, '.png') as tmp:
        fig.savefig(tmp, format='png', **kwargs)
