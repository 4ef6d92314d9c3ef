"""Convert a published checkpoint once into a by-name ``*.weights.h5`` that ``build`` loads.

Usage::

  python -m model_metamers.convert_checkpoint --network=word_reduced_aliasing \\
      --checkpoint=/path/to/word_reduced_aliasing.ckpt \\
      [--output=checkpoints/word_reduced_aliasing.weights.h5] [--name_map=overrides.json] \\
      [--hanning_normalize | --nohanning_normalize]
  python -m model_metamers.convert_checkpoint --network=word_aliased --print_name_map

The network is built from the checkpoint (through the name map for the audio
networks), then every Keras weight is written by ``<layer>/<variable>`` with
``weights_io.save_weights`` (atomic: nothing is left behind on failure). The
file's attributes record ``network``, ``source_checkpoint`` and
``build_options`` (JSON of ``net.info['build_options']``, e.g. the avgpool
padding and Hanning normalisation), which the builders read back before
building. Errors are printed as one message (no traceback), exit status 1.
"""

import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string('network', None, 'registered network name (python -c "from model_metamers.'
                    'networks import list_networks; print(list_networks())")')
flags.DEFINE_string('checkpoint', None, 'checkpoint prefix in the original format (the path '
                    'without .index / .data-*), or a folder holding one')
flags.DEFINE_string('output', None, 'where to write (a .h5 file); default checkpoints/<network>.weights.h5 '
                    '(or $MODEL_METAMERS_CHECKPOINT_DIR/<network>.weights.h5 when set), the file '
                    '--weights=auto loads; not beside --checkpoint')
flags.DEFINE_string('name_map', None, 'JSON file of name-map overrides (audio networks): '
                    '{"<keras layer>": "<TF1 layer scope>", "<keras layer>/<variable>": "<TF1 name>"}')
flags.DEFINE_boolean('hanning_normalize', None, 'audio reduced-aliasing networks: normalise the '
                     'Hanning kernels (SPEC UNKNOWN; default: unnormalised)')
flags.DEFINE_list('ignore_variables', None, 'audio networks: checkpoint variables (names, scopes or '
                  'fnmatch patterns) of brain_network/ that the Keras model deliberately does not use; '
                  'any other unmapped variable of the network is an error')
flags.DEFINE_boolean('use_ema', False, 'read weights from their ExponentialMovingAverage shadows '
                     'where the checkpoint has them (default: the plain values)')
flags.DEFINE_boolean('print_name_map', False, 'print the TF1 name map of --network (with '
                     '--name_map applied) and exit')


class ConversionError(ValueError):
    """Bad arguments to the converter."""


def convert(network, checkpoint, output=None, name_map=None, **options):
    """Build ``network`` from ``checkpoint`` and save it as ``*.weights.h5``.

    Args:
      network: registered network name.
      checkpoint: checkpoint prefix in the network's original format.
      output: destination ``*.h5`` path (default ``checkpoints/<network>.weights.h5``).
      name_map: name-map overrides (dict or JSON path), for builders that take one.
      **options: other builder options (e.g. ``hanning_normalize``), passed when not None.

    Returns ``(output path, MetamerNetwork)``.
    """
    from model_metamers import networks, weights_io
    from model_metamers.networks import checkpoints

    if not checkpoint:
        raise ConversionError('--checkpoint is required: the prefix of the original checkpoint '
                              '(see checkpoints/README.md)')
    path = os.path.expanduser(str(checkpoint))
    if path.endswith('.h5') or not checkpoints.is_tf_checkpoint(path):
        raise ConversionError('--checkpoint=%s is not a TF checkpoint; give the prefix of the '
                              "network's original checkpoint (the path without .index/.data-*, or a "
                              'V1 checkpoint file); published ones: python -m model_metamers.fetch '
                              '--network=%s' % (checkpoint, network))
    _, prefix = checkpoints.weights_kind(path, network, 'original')
    output = output or checkpoints.default_weights_path(network)
    if not output.endswith('.h5'):
        raise ConversionError('--output=%s must end with .h5 (e.g. <network>.weights.h5) so that '
                              'build() recognises it' % output)
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ConversionError('cannot write --output=%s: %s is not a writable folder; create it or '
                              'choose another --output' % (output, folder))
    kwargs = {k: v for k, v in options.items() if v is not None}
    if name_map is not None:
        kwargs['name_map'] = name_map
    builder = networks.get_builder(network)
    try:
        net = builder(weights=prefix, **kwargs)
    except TypeError as e:
        if kwargs and 'unexpected keyword' in str(e):
            raise ConversionError('network %s does not take option(s) %s'
                                  % (network, ', '.join(sorted(kwargs)))) from None
        raise
    attrs = {'network': network, 'source_checkpoint': os.path.abspath(prefix),
             'build_options': json.dumps(net.info.get('build_options', {}), sort_keys=True)}
    weights_io.save_weights(net.model, output, attrs=attrs)
    return output, net


def name_map_table(network, name_map=None):
    """The TF1 name map of an audio network as text (see ``tf1_audio_names``)."""
    from model_metamers.networks import audio_cnn, tf1_audio_names

    if network not in audio_cnn.VARIANTS:
        raise ConversionError('network %s has no name map: its checkpoint variables are read by '
                              'their own names' % network)
    return tf1_audio_names.describe(audio_cnn.VARIANTS[network].tasks, name_map)


def main(argv):
    if len(argv) > 1:
        print('convert_checkpoint: error: unexpected arguments %s' % ' '.join(argv[1:]),
              file=sys.stderr)
        return 1
    try:
        from model_metamers import networks

        if not FLAGS.network:
            raise ConversionError('--network is required; registered networks: %s'
                                  % ', '.join(networks.list_networks()))
        networks.modality_of(FLAGS.network)  # unknown name -> clear error before any work
        if FLAGS.print_name_map:
            print(name_map_table(FLAGS.network, FLAGS.name_map))
            return 0
        output, net = convert(FLAGS.network, FLAGS.checkpoint, FLAGS.output, FLAGS.name_map,
                              hanning_normalize=FLAGS.hanning_normalize,
                              ignore_variables=FLAGS.ignore_variables or None,
                              use_ema=FLAGS.use_ema or None)
    except (ValueError, OSError) as e:
        print('convert_checkpoint: error: %s' % e, file=sys.stderr)
        return 1
    if net.info.get('weights_report'):
        print(net.info['weights_report'])
    print('wrote %s (%s from %s, options %s); load it with build(%r, weights=%r)'
          % (output, FLAGS.network, FLAGS.checkpoint,
             json.dumps(net.info.get('build_options', {}), sort_keys=True), FLAGS.network, output))
    return 0


if __name__ == '__main__':
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')  # TF is imported later, by convert()
    app.run(main)
