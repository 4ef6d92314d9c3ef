"""Train a registered audio network: ``python -m model_metamers.train --network=NAME --data=DIR``.

A thin command line over :mod:`model_metamers.training` (see its modules for
the details). Examples::

    # keyword spotting on the espeak-ng data set (python -m model_metamers.spoken_words)
    python -m model_metamers.train --network=kws_2d --data=data/spoken_words

    # the paper's word network, augmented with background clips, until 57 % val accuracy
    python -m model_metamers.train --network=word_reduced_aliasing --data=DIR \\
        --background_dir=BG --target_accuracy=0.57 --epochs=100 --patience=0

    # folder + labels.csv -> TFRecords (then --data=OUT trains from them)
    python -m model_metamers.train --network=kws_2d --data=DIR --write_tfrecords=OUT

Checkpoints go to ``--output_dir`` (default ``checkpoints/``): the best weights as
``<network>.weights.h5`` (what ``--weights=auto`` loads), the last epoch's weights,
optimiser state and the run state (history, metrics) beside it. Running the same
command again resumes after the last finished epoch (also after Ctrl-C, which
prints where it stopped).
"""

import sys


def main(argv):
    from absl import flags

    from model_metamers.errors import USER_ERRORS
    from model_metamers.training import data, loop

    FLAGS = flags.FLAGS
    if not FLAGS.network or not FLAGS.data:
        print('error: --network and --data are required (e.g. --network=kws_2d '
              '--data=data/spoken_words)', file=sys.stderr)
        return 2
    errors = USER_ERRORS  # TrainError, DataError, AugmentError, TaskError among them
    try:
        if FLAGS.write_tfrecords:
            from model_metamers import networks
            from model_metamers.training.tasks import tasks_for
            net = networks.build(FLAGS.network, weights='random')
            counts = data.write_tfrecords(FLAGS.data, FLAGS.write_tfrecords, net, tasks_for(net),
                                          log=print)
            print('wrote %s: %s' % (FLAGS.write_tfrecords,
                                    ', '.join('%s %d' % kv for kv in counts.items())))
            return 0
        config = loop.TrainConfig(
            network=FLAGS.network, data=FLAGS.data, output_dir=FLAGS.output_dir,
            epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
            seed=FLAGS.seed, patience=FLAGS.patience, target_accuracy=FLAGS.target_accuracy,
            target_auc=FLAGS.target_auc, augment=FLAGS.augment, background_dir=FLAGS.background_dir,
            augment_validation=FLAGS.augment_validation, max_shift_s=FLAGS.max_shift_s,
            snr_low=FLAGS.snr_low, snr_high=FLAGS.snr_high, strategy=FLAGS.strategy,
            cache_front_end=FLAGS.cache_front_end, resume=FLAGS.resume,
            init_weights=FLAGS.init_weights, max_steps_per_epoch=FLAGS.max_steps_per_epoch)
        try:
            state = loop.train(config)
        except KeyboardInterrupt:
            # Ctrl-C: say what is kept and how to go on, not a traceback.
            print('\n' + loop.interrupted_message(config), file=sys.stderr)
            return 130
    except errors as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1
    final = state.get('final', {})
    print('done: %d epoch(s), best epoch %s, stopped by %s; %s'
          % (state['epochs_done'], state['best_epoch'], state['stopped'],
             '; '.join('%s %s' % (split, ', '.join('%s %.4f' % kv for kv in r.items()))
                       for split, r in final.items())))
    return 0


def _define_flags():
    from absl import flags
    flags.DEFINE_string('network', None, 'registered audio network to train (e.g. kws_2d)')
    flags.DEFINE_string('data', None, 'folder with labels.csv (path,label,split) or '
                        '<split>-*.tfrecord files')
    flags.DEFINE_string('output_dir', None, 'where checkpoints go (default: checkpoints/)')
    flags.DEFINE_integer('epochs', 10, 'most epochs')
    flags.DEFINE_integer('batch_size', 64, 'clips per step (over all replicas)')
    flags.DEFINE_float('learning_rate', 0.001, 'Adam learning rate')
    flags.DEFINE_integer('seed', 0, 'seed of the initialisation, shuffling and augmentation')
    flags.DEFINE_integer('patience', 2, 'stop after this many epochs without a better validation '
                         'score (0: never)')
    flags.DEFINE_float('target_accuracy', None, 'stop when every softmax task reaches this '
                       'validation accuracy (paper word task: 0.57)')
    flags.DEFINE_float('target_auc', None, 'stop when every sigmoid task reaches this validation '
                       'mean AUC (paper AudioSet task: 0.83)')
    flags.DEFINE_enum('augment', 'auto', ['auto', 'on', 'off'], 'background mixing: auto = on when '
                      '--background_dir is given, except for the keyword-spotting nets')
    flags.DEFINE_string('background_dir', None, 'folder of background WAV clips')
    flags.DEFINE_boolean('augment_validation', True, 'augment validation clips too (the paper did)')
    flags.DEFINE_float('max_shift_s', 0.25, 'largest random time shift of the speech, seconds')
    flags.DEFINE_float('snr_low', -10.0, 'lowest SNR of the background mix, dB')
    flags.DEFINE_float('snr_high', 10.0, 'highest SNR of the background mix, dB')
    flags.DEFINE_enum('strategy', 'default', ['default', 'mirrored', 'one-device'],
                      'tf.distribute strategy')
    flags.DEFINE_enum('cache_front_end', 'auto', ['auto', 'on', 'off'], 'compute the fixed front '
                      'end once per clip when there is no augmentation')
    flags.DEFINE_boolean('resume', True, 'continue the run in --output_dir after its last epoch')
    flags.DEFINE_string('init_weights', 'random', "'random' or a .weights.h5 to start from")
    flags.DEFINE_integer('max_steps_per_epoch', None, 'cap on training steps per epoch')
    flags.DEFINE_string('write_tfrecords', None, 'write the data folder as TFRecords into this '
                        'folder and exit')


if __name__ == '__main__':
    from model_metamers import cli
    cli.run(main, _define_flags)
