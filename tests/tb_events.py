"""Reading TensorBoard event files back in tests."""

import glob
import os


def tensorboard_events(folder):
    """``({(tag, step): scalar}, {(tag, plugin name)})`` of every event file below ``folder``."""
    import tensorflow as tf

    scalars, kinds = {}, set()
    for path in glob.glob(os.path.join(folder, '**', 'events.out.tfevents.*'), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                kinds.add((value.tag, value.metadata.plugin_data.plugin_name))
                if value.metadata.plugin_data.plugin_name == 'scalars':
                    scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    return scalars, kinds


def tensorboard_images(folder):
    """``{(tag, step): uint8 array [height, width, channels]}`` of every image summary below ``folder``."""
    import tensorflow as tf

    found = {}
    for path in glob.glob(os.path.join(folder, '**', 'events.out.tfevents.*'), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == 'images':
                    # The tensor holds width, height, then one encoded PNG per image.
                    encoded = tf.make_ndarray(value.tensor)[2]
                    found[(value.tag, event.step)] = tf.io.decode_image(encoded).numpy()
    return found
