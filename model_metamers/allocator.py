"""Start the command-line tools on tcmalloc when the machine has it.

A synthesis step on an audio network allocates and frees several tensors of
``[batch, 211, 40000]`` complex64 (67 MB each at batch 1) in the cochleagram's
FFT stages. glibc's malloc serves blocks that large with ``mmap`` and returns
them with ``munmap``, so every step pays page faults on fresh memory; on 2 CPU
cores that made a ``pool_0_0`` step 1.6x slower than with tcmalloc, which keeps
freed memory for reuse (numbers in BENCHMARKS.md). The allocator can only be
swapped before the process starts, so the tools re-execute themselves once with
``LD_PRELOAD`` naming tcmalloc.

``MODEL_METAMERS_ALLOCATOR=system`` turns this off. Nothing happens when the
library is absent (Debian/Ubuntu package ``libtcmalloc-minimal4``; ``make``
installs it when it can), when something is preloaded already (Colab preloads
tcmalloc itself), or off Linux.
"""

import os
import sys

ENV_SWITCH = 'MODEL_METAMERS_ALLOCATOR'
_MARK = 'MODEL_METAMERS_REEXECUTED'
LIBRARIES = ('libtcmalloc_minimal.so.4', 'libtcmalloc.so.4')
SEARCH_DIRS = ('/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib',
               '/usr/local/lib', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu')


def find_tcmalloc(search_dirs=SEARCH_DIRS):
    """Path of a tcmalloc shared library on this machine, or None."""
    for folder in search_dirs:
        for name in LIBRARIES:
            path = os.path.join(folder, name)
            if os.path.exists(path):
                return path
    return None


def _relaunch_argv():
    """The command line that started this process, to run it again unchanged.

    ``sys.orig_argv`` keeps the interpreter's own options and the ``-c CODE`` or
    ``-m MODULE`` form, which ``sys.argv`` loses (a ``-c`` program may even have
    rewritten ``sys.argv[0]``).
    """
    original = getattr(sys, 'orig_argv', None)
    if original:
        return [sys.executable] + list(original[1:])
    spec = getattr(sys.modules.get('__main__'), '__spec__', None)
    if spec is not None and spec.name and spec.name != '__main__':
        return [sys.executable, '-m', spec.name] + sys.argv[1:]
    return [sys.executable] + sys.argv


def _interactive():
    """True in a REPL or a Jupyter kernel, which must never be restarted under the user."""
    return hasattr(sys, 'ps1') or 'ipykernel' in sys.modules or bool(sys.flags.interactive)


def use_tcmalloc(environ=None, execve=os.execve):
    """Re-execute the running program with tcmalloc preloaded, when that applies.

    Call first thing in a command-line entry point (before TensorFlow is
    imported, so nothing is lost by restarting). Returns False when it does
    nothing; otherwise it does not return.
    """
    env = os.environ if environ is None else environ
    if (not sys.platform.startswith('linux') or env.get(ENV_SWITCH, 'tcmalloc') == 'system'
            or env.get(_MARK) or env.get('LD_PRELOAD') or _interactive()):
        return False
    library = find_tcmalloc()
    if library is None:
        return False
    new_env = dict(env)
    new_env['LD_PRELOAD'] = library
    new_env[_MARK] = '1'
    sys.stdout.flush()
    sys.stderr.flush()
    execve(sys.executable, _relaunch_argv(), new_env)
    return True  # only reached with a stand-in execve (tests)
