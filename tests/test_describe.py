"""The describe command: metamer layers, shapes and feature counts of a registered network."""

import io
import os
import subprocess
import sys

from model_metamers.networks import describe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _table(text):
    rows = [line for line in text.splitlines() if line and not line.startswith(('#', 'layer '))]
    return {line.split()[0]: int(line.split()[-1]) for line in rows}


def test_command_prints_feature_counts():
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
    result = subprocess.run([sys.executable, '-m', 'model_metamers.networks.describe',
                             '--network=deepspeech'], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    frames = 1 + (32000 - 512) // 320   # 2 s at 16 kHz, 32 ms windows every 20 ms
    assert _table(result.stdout) == {
        'mfcc': frames * 26, 'layer_1': frames * 2048, 'layer_2': frames * 2048,
        'layer_3': frames * 2048, 'rnn_output': frames * 2048, 'layer_5': frames * 2048,
        'logits': frames * 29}
    assert '(99, 2048)' in result.stdout


def test_describe_vggish_in_process():
    table = _table(describe.describe_network('vggish'))
    assert list(table)[0] == 'log_mel' and table['log_mel'] == 2 * 96 * 64
    assert table['pool4'] == 2 * 6 * 4 * 512 and table['embedding'] == 2 * 128


def test_unknown_network_is_one_clear_line():
    out, err = io.StringIO(), io.StringIO()
    assert describe.run('no_such_network', out=out, err=err) == 1
    message = err.getvalue().strip()
    assert len(message.splitlines()) == 1
    assert "unknown network 'no_such_network'" in message and 'vggish' in message
    assert out.getvalue() == ''
