"""One start-up for every command: user errors as one line, Ctrl-C as one line, quiet TF logs."""

import ast
import os
import subprocess
import sys

import numpy as np
import pytest

from model_metamers import cli
from model_metamers.errors import UserError
from model_metamers.generation import GenerationError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ['run_generation.py'] + [os.path.join('model_metamers', name) for name in (
    'convert_checkpoint.py', 'export_experiment.py', 'fetch.py', 'null_distribution.py', 'reports.py',
    'spoken_words.py', 'train.py', 'transfer.py', os.path.join('networks', 'describe.py'))]


def _raises(exc):
    def main(argv):
        raise exc
    return main


def test_a_user_error_is_one_line_and_status_1(capsys):
    assert cli.guarded(_raises(GenerationError('bad --seed; pass e.g. --seed=0\n')))([]) == 1
    assert capsys.readouterr().err == 'error: bad --seed; pass e.g. --seed=0\n'
    assert cli.guarded(_raises(FileNotFoundError(2, 'No such file', 'x.wav')))([]) == 1


def test_ctrl_c_is_one_line_and_status_130(capsys):
    assert cli.guarded(_raises(KeyboardInterrupt()), interrupted_hint='run it again')([]) == 130
    assert capsys.readouterr().err.strip() == 'interrupted: run it again'
    try:  # Ctrl-C inside a C extension's init surfaces as an ImportError caused by it
        raise KeyboardInterrupt()
    except KeyboardInterrupt as cause:
        wrapped = ImportError('init failed')
        wrapped.__cause__ = cause
    assert cli.guarded(_raises(wrapped))([]) == 130
    assert capsys.readouterr().err.strip() == 'interrupted'


def test_bugs_keep_their_traceback():
    with pytest.raises(ImportError):
        cli.guarded(_raises(ImportError('no module named x')))([])
    with pytest.raises(ZeroDivisionError):
        cli.guarded(_raises(ZeroDivisionError()))([])
    assert issubclass(GenerationError, UserError)


@pytest.mark.parametrize('path', COMMANDS)
def test_every_command_starts_through_cli(path):
    """The ``__main__`` block of every command calls the shared start-up (cli.run / run_plain / guarded)."""
    with open(os.path.join(REPO, path), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    mains = [node for node in tree.body if isinstance(node, ast.If)
             and '__main__' in ast.unparse(node.test)]
    assert mains
    called = ast.unparse(mains[-1])  # fetch quiets TF in an earlier one, before its imports
    if path == 'run_generation.py':  # its __main__ calls entry_point, the console script's target
        called = ast.unparse([n for n in tree.body if getattr(n, 'name', '') == 'entry_point'][0])
    assert any(name in called for name in ('cli.run(', 'cli.run_plain(', 'cli.guarded(')), called


def test_describe_says_an_unknown_network_and_a_stray_word_in_one_line():
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # the start-up quiets TensorFlow itself
    run = subprocess.run([sys.executable, '-m', 'model_metamers.networks.describe', '--network=nope',
                          'weights=random'], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        'error: unexpected argument(s) weights=random; every option is a flag, e.g. --network=vggish '
        '(see --help)']
    run = subprocess.run([sys.executable, '-m', 'model_metamers.networks.describe', '--network=nope'],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert run.returncode == 1 and 'Traceback' not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and 'nope' in run.stderr


def test_a_ctrl_c_swallowed_by_a_library_still_stops_the_next_loop():
    """Ctrl-C caught and dropped inside a library (seen: a training run that went on) is raised
    again by the next synthesis chunk: the remembered press is not lost."""
    import signal
    import time

    from model_metamers import interrupts
    from model_metamers.synthesis import MetamerSynthesizer
    from tests import toy_networks

    net = toy_networks.build_toy_audio()
    natural = np.random.RandomState(0).randn(*net.input_shape).astype(np.float32) * 0.1
    synth = MetamerSynthesizer(net, natural, 'relu1', log_every=0)
    previous = signal.getsignal(signal.SIGINT)
    try:
        interrupts.install()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except KeyboardInterrupt:
            pass  # what an `except` inside a library did with it
        with pytest.raises(KeyboardInterrupt):
            synth.synthesize(iterations=5)
        assert synth.step == 0
    finally:
        interrupts.install()  # forget the press
        signal.signal(signal.SIGINT, previous)
