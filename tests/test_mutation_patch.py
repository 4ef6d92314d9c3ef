"""tools/mutation_patch.py: the patch names the chosen lines of every file, as mutmut reads it."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tools'))

import mutation_patch  # noqa: E402


def test_each_file_of_the_patch_keeps_its_own_lines(tmp_path, monkeypatch):
    """mutmut (``--use-patch-file``) parses the patch with whatthepatch and mutates, per file,
    the lines it adds; with two files, the second's lines must not be read as the first's."""
    whatthepatch = pytest.importorskip('whatthepatch')
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'a.py').write_text('x = 1\n\n\ndef f():\n    return 2\n')
    (tmp_path / 'b.py').write_text('def g():\n    return 3\n\n\ndef h():\n    return 4\n')
    text = mutation_patch.patch(['a.py', 'b.py:h'])
    added = {os.path.normpath(d.header.new_path): {c.new for c in d.changes if c.old is None}
             for d in whatthepatch.parse_patch(text) if d.changes}  # as mutmut's read_patch_data
    assert added == {'a.py': {1, 2, 3, 4, 5}, 'b.py': {5, 6}}
    with pytest.raises(SystemExit, match='b.py has no function or class nope'):
        mutation_patch.patch(['b.py:nope'])


def test_a_mutants_tests_stopped_by_the_time_limit_count_as_a_kill():
    """mutmut takes every exit status but 1 for a survivor: tools/mutation_runner.sh turns a run
    stopped after its limit into 1 and passes the others through."""
    import subprocess

    runner = os.path.join(REPO, 'tools', 'mutation_runner.sh')

    def status(*command):
        return subprocess.run(['sh', runner] + list(command), capture_output=True).returncode

    assert status('1', 'sleep', '10') == 1  # a mutant whose tests never end: killed
    assert status('5', 'true') == 0  # the tests passed: a survivor
    assert status('0', 'sh', '-c', 'exit 2') == 2  # pytest's own error: left to be checked by hand
    assert status('0', 'sh', '-c', 'exit 1') == 1
    assert status('0', 'sh', '-c', 'exit 137') == 137  # killed by something else, without a limit
