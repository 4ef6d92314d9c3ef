"""The command-line flags of your own network (``--network=model.keras`` or ``module:function``).

Shared by ``run_generation.py`` and ``python -m model_metamers.null_distribution``;
kept apart from :mod:`model_metamers.networks.custom` so that defining the flags
does not import TensorFlow.
"""

from model_metamers.errors import UserError


def define_flags():
    """The absl flags of a user's own model, shared by every command taking ``--network``."""
    from absl import flags

    flags.DEFINE_enum('modality', None, ['audio', 'image'], 'your own model: what its input is '
                      '(default: from its input shape, [T] audio, [S, S, 3] image)')
    flags.DEFINE_string('class_names', None, 'your own model: JSON file with one class name per '
                        'output unit')
    flags.DEFINE_integer('sample_rate', None, 'your own audio model: sample rate of its waveform '
                         'input, Hz')
    flags.DEFINE_string('input_shape', None, 'your own model whose input shape is not fixed: the '
                        'shape of one stimulus, e.g. 224,224,3 or 40000')
    flags.DEFINE_enum('front_end', None, sorted(['word', 'kws']), 'your own model taking '
                      'cochleagrams: put this tfcochleagram front end in front of it (word: 20 kHz, '
                      '2 s -> [211, 400, 1]; kws: 16 kHz, 1 s -> [52, 100, 1]) so metamers are '
                      'waveforms')


def parse_input_shape(value):
    """``--input_shape=224,224,3`` as a tuple of ints (None when not given)."""
    if not value:
        return None
    try:
        shape = tuple(int(v) for v in str(value).split(',') if v.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise UserError('--input_shape must be positive whole numbers separated by commas, '
                                 'e.g. 224,224,3 or 40000; got %r' % value)
    return shape


def options_from_flags(flag_values=None):
    """The options of :func:`model_metamers.networks.load` from the flags :func:`define_flags` made."""
    from absl import flags

    f = flag_values if flag_values is not None else flags.FLAGS
    return dict(modality=f.modality, class_names=f.class_names, sample_rate=f.sample_rate,
                input_shape=parse_input_shape(f.input_shape), front_end=f.front_end)
