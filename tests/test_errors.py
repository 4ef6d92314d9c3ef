"""One error family: every user-facing error is a UserError, and errors.py imports nothing."""

import ast
import importlib
import inspect
import os

import model_metamers
from model_metamers.errors import USER_ERRORS, UserError

PACKAGE_DIR = os.path.dirname(model_metamers.__file__)


def _error_classes_in_source():
    """``[(module, class)]`` of every ``class *Error`` defined in the package's files."""
    found = []
    for root, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(root, name)
            with open(path, encoding='utf-8') as f:
                tree = ast.parse(f.read())
            rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, '.')
            module = rel[:-len('.__init__')] if rel.endswith('.__init__') else rel
            found += [(module, node.name) for node in tree.body
                      if isinstance(node, ast.ClassDef) and node.name.endswith('Error')]
    return found


def test_every_error_class_is_a_user_error():
    classes = _error_classes_in_source()
    assert len(classes) > 25
    not_user = []
    for module, name in classes:
        if module.endswith('__main__'):
            continue
        cls = getattr(importlib.import_module(module), name)
        if inspect.isclass(cls) and not issubclass(cls, UserError):
            not_user.append('%s.%s' % (module, name))
    assert not_user == []


def test_errors_module_is_a_leaf():
    with open(os.path.join(PACKAGE_DIR, 'errors.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports == []


def test_user_errors_keep_their_builtin_base():
    from model_metamers.fileio import DiskFullError
    from model_metamers.generation import GenerationError

    assert issubclass(GenerationError, ValueError)
    assert issubclass(DiskFullError, OSError)
    assert isinstance(DiskFullError('/x'), USER_ERRORS)
