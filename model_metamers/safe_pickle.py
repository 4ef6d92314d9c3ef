"""Read the original release's pickles without running anything from them.

``pickle.load`` calls whatever a file names, so an untrusted pickle can run any
code. The release's pickles hold two kinds of content:

* data (the null distributions, the word encodings): plain containers,
  numbers, strings and numpy arrays. :func:`load_data` resolves exactly those
  and refuses a file that names anything else, before anything is called.
* descriptions of TF1 graphs (the network-configuration pickles): the same
  containers plus references to TF functions and ``functools.partial``
  objects wrapping them. :func:`load_inert` turns every global that is not data
  into an :class:`InertGlobal` record of its module and name; "calling" one
  (the pickle's REDUCE / NEWOBJ) only records the arguments in an
  :class:`InertCall`. Nothing is imported and nothing is run.

Both read files written by Python 2 as well (``encoding='latin1'``, as numpy
arrays pickled by Python 2 need).
"""

import builtins
import collections
import io
import os
import pickle

import numpy as np

from model_metamers.errors import UserError


class UnsafePickleError(UserError, ValueError):
    """A pickle that names something other than data (one-line message)."""


# (module, name) pairs that rebuild data and nothing else. numpy >= 2 spells numpy.core as
# numpy._core; Python 2 pickles name __builtin__ (mapped to builtins by fix_imports).
_NUMPY_DATA = {
    ('numpy', 'ndarray'), ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'), ('numpy._core.numeric', '_frombuffer'),
    # protocol 0/1 pickles spell bytes as _codecs.encode(<latin-1 text>, 'latin1')
    ('_codecs', 'encode'),
}
_BUILTIN_DATA = {'set', 'frozenset', 'complex', 'bytearray', 'list', 'dict', 'tuple', 'int',
                 'float', 'str', 'bytes', 'bool', 'range', 'slice'}
_COLLECTIONS_DATA = {'OrderedDict'}


def _data_global(module, name):
    """The object for a data-only global, else None."""
    if (module, name) in _NUMPY_DATA:
        if module.startswith('numpy._core') and not hasattr(np, '_core'):
            module = module.replace('numpy._core', 'numpy.core')  # numpy 2 file on numpy 1
        obj = __import__(module, fromlist=[name])
        return getattr(obj, name)
    if module == 'builtins' and name in _BUILTIN_DATA:
        return getattr(builtins, name)
    if module == 'collections' and name in _COLLECTIONS_DATA:
        return getattr(collections, name)
    if module == 'numpy' and name in ('float64', 'float32', 'int64', 'int32', 'bool_'):
        return getattr(np, name)
    return None


class _InertMeta(type):
    """Metaclass of the stand-ins, so that a stand-in prints as the global it replaces."""

    def __repr__(cls):
        return '<%s>' % cls.qualified_name

    @property
    def qualified_name(cls):
        return '%s.%s' % (cls.module, cls.name)


class InertGlobal(metaclass=_InertMeta):
    """Base of the stand-ins for a global a pickle referred to (``module``, ``name``), never imported.

    A stand-in is a class, so that both of the pickle's ways to build an object,
    REDUCE (``f(*args)``) and NEWOBJ (``cls.__new__(cls, *args)``), end in
    ``__new__``, which only records the call.
    """

    module = None
    name = None

    def __new__(cls, *args, **kwargs):
        return InertCall(cls, args, kwargs)


def _stand_in(module, name):
    return _InertMeta(str(name), (InertGlobal,), {'module': module, 'name': name})


class InertCall:
    """What a pickle would have built by calling ``func(*args, **kwargs)``, kept as a record.

    ``state`` is what the pickle would have passed to ``__setstate__`` (for a
    ``functools.partial``: ``(func, args, keywords, dict)``); ``items`` any
    list / dict items the pickle appended to it.
    """

    def __init__(self, func, args=(), kwargs=None):
        self.func = func
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.state = None
        self.items = []

    def __setstate__(self, state):
        self.state = state

    def append(self, item):
        self.items.append(item)

    def extend(self, items):
        self.items.extend(items)

    def __setitem__(self, key, value):
        self.items.append((key, value))

    @property
    def name(self):
        return getattr(self.func, 'qualified_name', repr(self.func))

    def partial_parts(self):
        """``(function, args, keywords)`` when this records a ``functools.partial``, else None."""
        if self.name != 'functools.partial':
            return None
        if isinstance(self.state, tuple) and len(self.state) >= 3:
            func, args, keywords = self.state[:3]
            return func, tuple(args or ()), dict(keywords or {})
        if self.args:  # protocol 0/1 style: partial(func, *args) with no state
            return self.args[0], self.args[1:], dict(self.kwargs)
        return None

    def __repr__(self):
        parts = self.partial_parts()
        if parts:
            func, args, keywords = parts
            return 'partial(%r%s%s)' % (func, ''.join(', %r' % (a,) for a in args),
                                        ''.join(', %s=%r' % kv for kv in sorted(keywords.items())))
        return '%s(...)' % self.name


class _DataUnpickler(pickle.Unpickler):
    def __init__(self, file, label):
        super().__init__(file, encoding='latin1')
        self.label = label

    def find_class(self, module, name):
        obj = _data_global(module, name)
        if obj is None:
            raise UnsafePickleError(
                '%s is not a data pickle: it refers to %s.%s, which is neither a container nor a '
                'numpy array; it was not loaded and nothing from it was run (give the published '
                'file, or convert it where you trust it)' % (self.label, module, name))
        return obj


class _InertUnpickler(_DataUnpickler):
    def find_class(self, module, name):
        obj = _data_global(module, name)
        return obj if obj is not None else _stand_in(module, name)


def _open(path, what):
    path = os.fspath(path)
    try:
        with open(path, 'rb') as f:
            return path, f.read()
    except OSError as exc:
        raise UnsafePickleError('cannot read the %s %s (%s)' % (what, path, exc.strerror or exc)) \
            from None


def _load(unpickler_class, path, what):
    path, raw = _open(path, what)
    try:
        return unpickler_class(io.BytesIO(raw), path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError) as exc:
        raise UnsafePickleError('%s is not a readable %s (%s: %s)'
                                % (path, what, type(exc).__name__, exc)) from None


def load_data(path, what='data pickle'):
    """Unpickle ``path`` allowing only containers, numbers, strings and numpy arrays.

    Raises :class:`UnsafePickleError` (one line, naming the first global that
    is not data) before anything the file names is called.
    """
    return _load(_DataUnpickler, path, what)


def load_inert(path, what='network-configuration pickle'):
    """Unpickle ``path`` with every non-data global as an :class:`InertGlobal` record.

    Calls the pickle asks for become :class:`InertCall` records; nothing is
    imported or run. Returns the rebuilt structure.
    """
    return _load(_InertUnpickler, path, what)


def is_pickle(path):
    """True when ``path`` starts like a pickle (protocol 2+ header, or protocol 0/1 opcodes)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and (head[0] == 0x80 and head[1] <= 5 or head[:1] in (b'(', b'}', b']'))
