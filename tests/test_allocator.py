"""The command-line tools restart once on tcmalloc when the machine has it."""

import os
import subprocess
import sys

import pytest

from model_metamers import allocator
from tests.conftest import REPO


def test_find_tcmalloc_looks_in_the_given_folders(tmp_path):
    assert allocator.find_tcmalloc([str(tmp_path)]) is None
    lib = tmp_path / 'libtcmalloc_minimal.so.4'
    lib.write_bytes(b'')
    assert allocator.find_tcmalloc([str(tmp_path)]) == str(lib)


def _capture(monkeypatch, environ, library='/lib/libtcmalloc_minimal.so.4'):
    calls = []
    monkeypatch.setattr(allocator, 'find_tcmalloc', lambda: library)
    done = allocator.use_tcmalloc(environ=environ,
                                  execve=lambda exe, argv, env: calls.append((exe, argv, env)))
    return done, calls


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='LD_PRELOAD is a Linux mechanism')
def test_restarts_with_the_library_preloaded(monkeypatch):
    done, calls = _capture(monkeypatch, {'PATH': '/bin'})
    assert done and len(calls) == 1
    exe, argv, env = calls[0]
    assert exe == sys.executable and argv[0] == sys.executable
    assert env['LD_PRELOAD'] == '/lib/libtcmalloc_minimal.so.4'
    assert env['PATH'] == '/bin'
    # The restarted process must not restart again.
    assert allocator.use_tcmalloc(environ=env, execve=lambda *a: calls.append(a)) is False
    assert len(calls) == 1


@pytest.mark.parametrize('environ', [{'MODEL_METAMERS_ALLOCATOR': 'system'},
                                     {'LD_PRELOAD': '/usr/lib/libjemalloc.so.2'}])
def test_opt_out_and_existing_preload_are_respected(monkeypatch, environ):
    done, calls = _capture(monkeypatch, environ)
    assert done is False and calls == []


def test_no_library_means_no_restart(monkeypatch):
    done, calls = _capture(monkeypatch, {}, library=None)
    assert done is False and calls == []


@pytest.mark.skipif(allocator.find_tcmalloc() is None or not sys.platform.startswith('linux'),
                    reason='tcmalloc is not installed (make installs libtcmalloc-minimal4 as root)')
def test_a_module_entry_point_runs_on_tcmalloc(tmp_path):
    """Through ``python -m``, the way the tools start, and with their arguments intact."""
    package = tmp_path / 'probe_pkg'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'tool.py').write_text(
        'import os, sys\n'
        'from model_metamers.allocator import use_tcmalloc\n'
        'use_tcmalloc()\n'
        'maps = open("/proc/self/maps").read()\n'
        'print("tcmalloc" in maps, sys.argv[1:])\n')
    env = {k: v for k, v in os.environ.items() if k not in ('LD_PRELOAD', 'MODEL_METAMERS_ALLOCATOR')}
    env['PYTHONPATH'] = os.pathsep.join([str(tmp_path), REPO])
    out = subprocess.run([sys.executable, '-m', 'probe_pkg.tool', '--flag=1', 'x'], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True ['--flag=1', 'x']"


@pytest.mark.skipif(allocator.find_tcmalloc() is None or not sys.platform.startswith('linux'),
                    reason='tcmalloc is not installed (make installs libtcmalloc-minimal4 as root)')
def test_a_dash_c_program_that_rewrites_argv_is_restarted_unchanged():
    """Tests and scripts start the tools as ``python -c CODE ARGS`` with a made-up ``sys.argv[0]``."""
    code = ('import sys; sys.argv = ["tool"] + sys.argv[1:]; '
            'from model_metamers.allocator import use_tcmalloc; use_tcmalloc(); '
            'print("tcmalloc" in open("/proc/self/maps").read(), sys.argv)')
    env = {k: v for k, v in os.environ.items() if k not in ('LD_PRELOAD', 'MODEL_METAMERS_ALLOCATOR')}
    env['PYTHONPATH'] = REPO
    out = subprocess.run([sys.executable, '-c', code, '--flag=1'], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True ['tool', '--flag=1']"


def test_never_restarts_an_interactive_session(monkeypatch):
    monkeypatch.setattr(sys, 'ps1', '>>> ', raising=False)
    done, calls = _capture(monkeypatch, {})
    assert done is False and calls == []
