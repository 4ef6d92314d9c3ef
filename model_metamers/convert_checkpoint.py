"""Convert a published checkpoint once into a by-name ``*.weights.h5`` that ``build`` loads.

Usage::

  python -m model_metamers.convert_checkpoint --network=word_reduced_aliasing \\
      --checkpoint=/path/to/word_reduced_aliasing.ckpt \\
      [--output=checkpoints/word_reduced_aliasing.weights.h5] [--name_map=overrides.json] \\
      [--hanning_normalize | --nohanning_normalize]
  python -m model_metamers.convert_checkpoint --network=word_aliased --print_name_map
  python -m model_metamers.convert_checkpoint --network=word_reduced_aliasing \
      --checkpoint=/path/to/word_reduced_aliasing.ckpt --inspect

For the word networks, the release's network-configuration pickle
(``word_network_aliased.pckl`` / ``word_network_reduced_aliasing.pckl``, found
beside the checkpoint or given with ``--network_config``) is read without
running anything from it (:mod:`model_metamers.networks.weights.tf1_network_config`):
its layer names become the TF1 names of the Keras layers, its Hanning and
avgpool settings the build options, and every layer (order, type, filters,
kernel, strides, padding, units, pooling parameters) is compared with the Keras
build; any difference stops the conversion with a side-by-side table.
``--inspect`` prints the checkpoint's variables and the pickle's layers with the
mapping that would be used, and writes nothing.

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

from absl import flags

from model_metamers.errors import UserError

FLAGS = flags.FLAGS


class ConversionError(UserError, ValueError):
    """Bad arguments to the converter."""


def _checkpoint_prefix(network, checkpoint):
    from model_metamers.networks.weights import checkpoints

    if not checkpoint:
        raise ConversionError('--checkpoint is required: the prefix of the original checkpoint '
                              '(see checkpoints/README.md)')
    path = os.path.expanduser(str(checkpoint))
    if path.endswith('.h5') or not checkpoints.is_tf_checkpoint(path):
        raise ConversionError('--checkpoint=%s is not a TF checkpoint; give the prefix of the '
                              "network's original checkpoint (the path without .index/.data-*, or a "
                              'V1 checkpoint file); published ones: python -m model_metamers.fetch '
                              '--network=%s' % (checkpoint, network))
    return checkpoints.weights_kind(path, network, 'original')[1]


def _config_path(network, prefix, network_config):
    from model_metamers.networks.audio import audio_cnn
    from model_metamers.networks.weights import tf1_network_config

    if network_config:
        path = os.path.expanduser(str(network_config))
        if network not in audio_cnn.VARIANTS:
            raise ConversionError('--network_config applies to the word networks (%s), not %s'
                                  % (', '.join(tf1_network_config.FILE_NAMES), network))
        if not os.path.isfile(path):
            raise ConversionError('--network_config=%s does not exist; give the release\'s %s'
                                  % (path, tf1_network_config.FILE_NAMES.get(network, 'pickle')))
        return path
    return tf1_network_config.default_path(network, prefix)


def _checked_random_build(network, config_path, **options):
    """``(layers, options, network)``: the pickle's layers and a random build with its options.

    The build has been compared with the pickle layer by layer
    (:class:`~model_metamers.networks.weights.tf1_network_config.NetworkConfigError`
    with a side-by-side table otherwise).
    """
    from model_metamers import networks
    from model_metamers.networks.weights import tf1_network_config

    layers = tf1_network_config.read(config_path)
    found = tf1_network_config.build_options(layers, config_path)
    merged = {k: v for k, v in options.items() if v is not None}
    merged.update({k: v for k, v in found.items() if v is not None and k not in merged})
    net = networks.build(network, weights='random', **merged)
    tf1_network_config.check(layers, net.model, config_path)
    return layers, merged, net


def convert(network, checkpoint, output=None, name_map=None, network_config=None, **options):
    """Build ``network`` from ``checkpoint`` and save it as ``*.weights.h5``.

    Args:
      network: registered network name.
      checkpoint: checkpoint prefix in the network's original format.
      output: destination ``*.h5`` path (default ``checkpoints/<network>.weights.h5``).
      name_map: name-map overrides (dict or JSON path), for builders that take one.
      network_config: the word networks' configuration pickle; default: the
        release's file name beside the checkpoint when it is there.
      **options: other builder options (e.g. ``hanning_normalize``), passed when not None.

    Returns ``(output path, MetamerNetwork)``.
    """
    from model_metamers import networks, weights_io
    from model_metamers.networks.weights import checkpoints

    prefix = _checkpoint_prefix(network, checkpoint)
    output = output or checkpoints.default_weights_path(network)
    if not output.endswith('.h5'):
        raise ConversionError('--output=%s must end with .h5 (e.g. <network>.weights.h5) so that '
                              'build() recognises it' % output)
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ConversionError('cannot write --output=%s: %s is not a writable folder; create it or '
                              'choose another --output' % (output, folder))
    kwargs = {k: v for k, v in options.items() if v is not None}
    config_path = _config_path(network, prefix, network_config)
    if config_path:
        kwargs['network_config'] = config_path
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
    if config_path:
        attrs['network_config'] = os.path.abspath(config_path)
    weights_io.save_weights(net.model, output, attrs=attrs)
    return output, net


def inspect(network, checkpoint, name_map=None, network_config=None, **options):
    """Text: the checkpoint's variables and the configuration pickle's layers, with the mapping.

    Every checkpoint variable is shown with the Keras variable it would fill,
    or why it is not read (training bookkeeping, a head of another task, not
    used). Nothing is written.
    """
    import tensorflow as tf

    from model_metamers.networks.audio import audio_cnn

    from model_metamers.networks.weights import bookkeeping, tf1_audio_names, tf1_network_config

    prefix = _checkpoint_prefix(network, checkpoint)
    shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    lines = []
    config_path = _config_path(network, prefix, network_config)
    mapping = {}
    if network in audio_cnn.VARIANTS:
        kwargs = {k: v for k, v in options.items() if v is not None}
        if config_path:
            layers, kwargs, net = _checked_random_build(network, config_path, **kwargs)
            name_map = dict(tf1_network_config.name_overrides(
                layers, net.model, audio_cnn.VARIANTS[network].tasks),
                **tf1_audio_names.load_overrides(name_map))
            lines.append('network-configuration pickle %s (%d layers), read without running it:'
                         % (config_path, len(layers)))
            lines.append(tf1_network_config.describe(layers))
            lines.append('compared with the Keras build (options %s):' % json.dumps(
                kwargs, sort_keys=True))
            lines.append(tf1_network_config.comparison_table(layers, net.model, config_path))
        else:
            lines.append('no network-configuration pickle (%s) beside the checkpoint: the default '
                         'TF1 names are used' % tf1_network_config.FILE_NAMES.get(network))
        mapping = tf1_audio_names.variable_map(audio_cnn.VARIANTS[network].tasks, name_map)
    elif config_path:
        raise ConversionError('--network_config applies to the word networks only')
    by_checkpoint_name = {v: k for k, v in mapping.items()}
    lines.append('checkpoint %s (%d variables):' % (prefix, len(shapes)))
    width = max(len(n) for n in shapes) + 2
    for name in sorted(shapes):
        kind = bookkeeping.kind_of(name)
        if name in by_checkpoint_name:
            what = '-> %s' % by_checkpoint_name[name]
        elif kind is not None:
            what = 'skipped: %s' % kind.label
        elif name.startswith(tf1_audio_names.TF1_SCOPE + '/fc_top_') and mapping:
            what = 'not read: head of another task'
        elif mapping and name.startswith(tf1_audio_names.TF1_SCOPE + '/'):
            what = 'NOT USED by the Keras model (an error when converting)'
        elif mapping:
            what = 'outside %s/, not read' % tf1_audio_names.TF1_SCOPE
        else:
            what = 'read by name (see --print_name_map for the audio networks)'
        lines.append('  %-*s %-22s %s' % (width, name, tuple(shapes[name]), what))
    missing = sorted(k for k, v in mapping.items() if v not in shapes)
    if missing:
        lines.append('Keras variables whose checkpoint name is missing: %s' % ', '.join(
            '%s <- %s' % (k, mapping[k]) for k in missing))
    return '\n'.join(lines)


def name_map_table(network, name_map=None):
    """The TF1 name map of an audio network as text (see ``tf1_audio_names``)."""
    from model_metamers.networks.audio import audio_cnn
    from model_metamers.networks.weights import tf1_audio_names

    if network not in audio_cnn.VARIANTS:
        raise ConversionError('network %s has no name map: its checkpoint variables are read by '
                              'their own names' % network)
    return tf1_audio_names.describe(audio_cnn.VARIANTS[network].tasks, name_map)


def main(argv):
    if len(argv) > 1:
        print('convert_checkpoint: error: unexpected arguments %s' % ' '.join(argv[1:]),
              file=sys.stderr)
        return 1
    from model_metamers.cli import expand_home

    expand_home()
    try:
        from model_metamers import networks

        if not FLAGS.network:
            raise ConversionError('--network is required; registered networks: %s'
                                  % ', '.join(networks.list_networks()))
        networks.modality_of(FLAGS.network)  # unknown name -> clear error before any work
        if FLAGS.print_name_map:
            print(name_map_table(FLAGS.network, FLAGS.name_map))
            return 0
        if FLAGS.inspect:
            print(inspect(FLAGS.network, FLAGS.checkpoint, FLAGS.name_map, FLAGS.network_config,
                          hanning_normalize=FLAGS.hanning_normalize))
            return 0
        output, net = convert(FLAGS.network, FLAGS.checkpoint, FLAGS.output, FLAGS.name_map,
                              network_config=FLAGS.network_config,
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


def _define_flags():
    """The command's flags (defined only when it runs, so that importing the module defines none)."""
    flags.DEFINE_string('network', None, 'registered network name (python -c "from model_metamers.'
                        'networks import list_networks; print(list_networks())")')
    flags.DEFINE_string('checkpoint', None, 'checkpoint prefix in the original format (the path '
                        'without .index / .data-*), or a folder holding one')
    flags.DEFINE_string('output', None, 'where to write (a .h5 file); default '
                        'checkpoints/<network>.weights.h5 (or $MODEL_METAMERS_CHECKPOINT_DIR/'
                        '<network>.weights.h5 when set), the file --weights=auto loads; not beside '
                        '--checkpoint')
    flags.DEFINE_string('name_map', None, 'JSON file of name-map overrides (audio networks): '
                        '{"<keras layer>": "<TF1 layer scope>", "<keras layer>/<variable>": "<TF1 name>"}')
    flags.DEFINE_boolean('hanning_normalize', None, 'audio reduced-aliasing networks: normalise the '
                         'Hanning kernels (SPEC UNKNOWN; default: unnormalised)')
    flags.DEFINE_list('ignore_variables', None, 'audio networks: checkpoint variables (names, scopes or '
                      'fnmatch patterns) of brain_network/ that the Keras model deliberately does not use; '
                      'any other unmapped variable of the network is an error')
    flags.DEFINE_boolean('use_ema', False, 'read weights from their ExponentialMovingAverage shadows '
                         'where the checkpoint has them (default: the plain values)')
    flags.DEFINE_string('network_config', None, 'word networks: the release\'s network-configuration '
                        'pickle (default: word_network_<architecture>.pckl beside the checkpoint, if there)')
    flags.DEFINE_boolean('inspect', False, 'print the checkpoint\'s variables and the network-configuration '
                         'pickle\'s layers with the mapping that would be used, and exit (writes nothing)')
    flags.DEFINE_boolean('print_name_map', False, 'print the TF1 name map of --network (with '
                         '--name_map applied) and exit')


if __name__ == '__main__':
    from model_metamers import cli

    # TF is imported later, by convert(); its own "convert_checkpoint: error:" lines stay.
    cli.start_up()
    _define_flags()
    cli.run_absl(cli.guarded(main))
