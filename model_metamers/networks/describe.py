"""Print a network's metamer layers with their shapes and feature counts (Tables S4/S5 style).

Usage::

    python -m model_metamers.networks.describe --network=vggish [--weights=random]

One line per metamer layer: name, shape of one stimulus's activations, number
of features. Works for every registered network (``list_networks()``).
"""

import sys

from absl import flags

from model_metamers.errors import UserError
from model_metamers.networks import build, list_networks


def describe_network(name, weights='random'):
    """The text the command prints for network ``name`` (built with ``weights``)."""
    network = build(name, weights=weights)
    rate = ' at %g Hz' % network.sample_rate if network.sample_rate else ''
    header = ['# %s (%s): input %s%s, weights %s' % (name, network.modality, network.input_shape,
                                                       rate, network.info.get('weights', weights)),
              '%-24s %-22s %s' % ('layer', 'shape', 'features')]
    return '\n'.join(header + [network.describe()])


def run(name, weights='random', out=None, err=None):
    """Print the description of ``name`` to ``out``; return the exit status (0 ok, 1 error)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        text = describe_network(name, weights)
    except UserError as error:  # an unknown network, weights that do not load
        print('describe: %s' % error, file=err)
        return 1
    print(text, file=out)
    return 0


def _define_flags():
    # Defined only when run as a command, so that importing this module never
    # clashes with another program's --network flag.
    flags.DEFINE_string('network', None, 'registered network, one of: %s'
                        % ', '.join(list_networks()))
    flags.DEFINE_string('weights', 'random',
                        '"random", "default", a checkpoint path or a .weights.h5 file')
    flags.mark_flag_as_required('network')


def main(argv):
    del argv  # checked by the start-up: only flags
    return run(flags.FLAGS.network, flags.FLAGS.weights)


if __name__ == '__main__':
    from model_metamers import cli

    cli.run(main, _define_flags, example='--network=vggish')
