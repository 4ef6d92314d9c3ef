"""The listenable / viewable files and TensorBoard summaries written beside the HDF5 results."""

import os

import numpy as np

from model_metamers import results


class Exporter:
    """Writes the listenable / viewable files beside the HDF5 results."""

    def __init__(self, network, network_dir):
        self.network = network
        self.dir = network_dir

    def stimulus(self, stem, suffix, x, domain):
        base = os.path.join(self.dir, '%s_%s' % (stem, results.layer_file_name(suffix)))
        if self.network.modality == 'image':
            from model_metamers import images
            images.save_png(base + '.png', x)
        elif domain == 'stimulus':
            from model_metamers import audio
            audio.write_wav(base + '.wav', x, sr=self.network.sample_rate)
        else:
            from model_metamers import plotting
            plotting.save_cochleagram_png(base + '.png', x)


def tensorboard_writer(settings, network_name, stem):
    """A summary writer under ``<tensorboard_dir>/<network_name>/<stem>``, or None without a folder.

    ``network_name``: the built network's name (a user's model is named by its file,
    not by the ``--network`` path)."""
    if not settings.tensorboard_dir:
        return None
    import tensorflow as tf
    return tf.summary.create_file_writer(os.path.join(settings.tensorboard_dir, network_name, stem))


def tensorboard_log(writer, network, layer, synth, k, val):
    """Loss curve, rho and the metamer of stimulus ``k`` of the batch ``synth`` made."""
    if writer is None:
        return
    import tensorflow as tf
    metamer, domain = synth.metamer[k], synth.domain
    record = synth.record(k)
    last = record['iterations']
    with writer.as_default():
        for step, loss in zip(record['loss_steps'], record['loss']):
            tf.summary.scalar('loss/%s' % layer, float(loss), step=int(step))
        tf.summary.scalar('spearman/%s' % layer, val.spearman_matched, step=last)
        if domain == 'stimulus' and network.modality == 'audio':
            peak = max(float(np.max(np.abs(metamer))), 1e-9)
            tf.summary.audio('metamer/%s' % layer, (metamer / peak)[None, :, None],
                             network.sample_rate, step=last)
        elif network.modality == 'image':
            tf.summary.image('metamer/%s' % layer, np.clip(metamer, 0, 1)[None], step=last)
        elif np.ndim(metamer) == 3:  # a cochleagram [frequency, time, 1]: low frequencies at the bottom
            low, high = float(np.min(metamer)), float(np.max(metamer))
            picture = (metamer[::-1] - low) / max(high - low, 1e-12)
            tf.summary.image('metamer/%s' % layer, picture[None], step=last)
    writer.flush()
