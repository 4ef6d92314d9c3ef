"""Labelled clips for training: a folder + ``labels.csv``, or TFRecords; ``tf.data`` pipelines.

Folder + CSV (what ``python -m model_metamers.spoken_words`` writes)::

    DIR/labels.csv   header path,label,split  (path relative to DIR; split train|val|test)

``label`` holds the label of a single-task network; a network with several
heads reads ``label_<task>`` columns instead (``label_word``, ``label_audioset``;
a single-task network also accepts ``label_<task>``). A label is a class name of
the task or its integer index; multi-label (sigmoid) tasks join labels with ``;``
and may be empty (no positive class).

TFRecords (written by :func:`write_tfrecords`): files ``DIR/<split>-NNNNN.tfrecord``,
one ``tf.train.Example`` per clip with the features

* ``signal``: float list, the waveform at the network's rate and length
  (mean removed, RMS 0.1), the key ``null_distribution`` also reads;
* ``label_<task>``: int64 list, the class indices of the clip for each task
  (one index for softmax tasks, zero or more for sigmoid tasks);
* ``path``: bytes, the clip's path in the source folder (for reference).

Every waveform is brought to the network's input: mono, resampled to its rate
(scipy polyphase), cut or zero-padded to its length (centred), mean removed,
RMS 0.1 (as natural sounds are for synthesis, SPEC §4).
"""

import csv
import glob
import os

import numpy as np
import tensorflow as tf

from model_metamers.errors import UserError
from model_metamers.fileio import atomic_path

SPLITS = ('train', 'val', 'test')
RMS = 0.1


class DataError(UserError, ValueError):
    """A data set that cannot be read or does not fit the network."""


# ------------------------------------------------------------------ waveforms
def load_clip(path, sr, n_samples):
    """A sound file as a network input: float32 ``[n_samples]`` at ``sr`` Hz, RMS 0.1.

    scipy only (``tensorflow-io``'s reader is not thread-safe and this runs in
    parallel ``tf.data`` maps). Silent clips stay silent (all zeros).
    """
    import scipy.signal

    from model_metamers import audio

    try:
        x, file_sr = audio.read_wav(path)
    except (OSError, ValueError) as e:
        raise DataError('cannot read %s as WAV (%s); convert it to WAV' % (path, e)) from None
    if x.ndim > 1:
        x = x.mean(axis=1)
    if int(file_sr) != int(sr):
        g = np.gcd(int(file_sr), int(sr))
        x = scipy.signal.resample_poly(x, int(sr) // g, int(file_sr) // g)
    return normalize(audio.fit_length(x, int(n_samples))).astype(np.float32)


def normalize(x, rms=RMS):
    """Remove the mean, scale to ``rms`` (numpy; silent input stays zero)."""
    x = np.asarray(x, np.float64) - np.mean(x)
    current = np.sqrt(np.mean(x ** 2))
    return x * (rms / current) if current > 1e-8 else x * 0.0


# ------------------------------------------------------------------ labels
class LabelEncoder:
    """Turns CSV label strings into per-task targets (int index, or multi-hot float32)."""

    def __init__(self, tasks):
        self.tasks = tasks
        self.index = [{name: i for i, name in enumerate(t.class_names)} for t in tasks]

    def indices(self, k, text, where):
        """Class indices of task ``k`` in a label string (names or integer indices, ``;``-joined)."""
        task = self.tasks[k]
        parts = [p.strip() for p in str(text).split(';') if p.strip()]
        out = []
        for p in parts:
            if p in self.index[k]:
                out.append(self.index[k][p])
            elif p.lstrip('-').isdigit() and 0 <= int(p) < task.n_classes:
                out.append(int(p))
            else:
                raise DataError('%s: label %r is not a class of task %s (%d classes, e.g. %s); use a '
                                'class name or an index 0-%d'
                                % (where, p, task.name, task.n_classes,
                                   ', '.join(task.class_names[:4]), task.n_classes - 1))
        if task.kind == 'softmax' and len(out) != 1:
            raise DataError('%s: task %s needs exactly one label per clip, got %r'
                            % (where, task.name, text))
        return out

    def target(self, k, indices):
        """The target array of task ``k``: int32 scalar (softmax) or multi-hot float32 ``[C]``."""
        task = self.tasks[k]
        if task.kind == 'softmax':
            return np.int32(indices[0])
        y = np.zeros(task.n_classes, np.float32)
        y[list(indices)] = 1.0
        return y


def read_labels(data_dir, tasks, split):
    """``(paths, {task: [indices per clip]})`` of one split of a folder + ``labels.csv``."""
    csv_path = os.path.join(data_dir, 'labels.csv')
    if not os.path.isfile(csv_path):
        raise DataError('%s not found; a data folder needs labels.csv (header path,label,split), '
                        'e.g. made by python -m model_metamers.spoken_words --out=%s'
                        % (csv_path, data_dir))
    encoder = LabelEncoder(tasks)
    paths, lines, labels = [], [], {t.name: [] for t in tasks}
    with open(csv_path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        need = {'path', 'split'}
        for t in tasks:
            col = 'label_%s' % t.name
            if col not in columns and not (len(tasks) == 1 and 'label' in columns):
                raise DataError('%s has no column %s%s (columns: %s)'
                                % (csv_path, col, ' or label' if len(tasks) == 1 else '',
                                   ', '.join(sorted(columns))))
        if not need <= columns:
            raise DataError('%s needs the columns path, label and split; it has %s'
                            % (csv_path, ', '.join(sorted(columns))))
        for line, row in enumerate(reader, start=2):
            if row['split'] != split:
                continue
            paths.append(os.path.join(data_dir, row['path']))
            lines.append(line)
            for k, t in enumerate(tasks):
                col = 'label_%s' % t.name
                text = row[col] if col in row else row['label']
                labels[t.name].append(encoder.indices(k, text, '%s line %d' % (csv_path, line)))
    missing = [(line, p) for line, p in zip(lines, paths) if not os.path.isfile(p)]
    if missing:
        raise DataError('%d clip(s) of the %s split listed in %s do not exist, e.g. %s (line %d); fix '
                        'the paths (relative to %s) or remove those rows'
                        % (len(missing), split, csv_path, missing[0][1], missing[0][0], data_dir))
    return paths, labels


# ------------------------------------------------------------------ TFRecords
def _shard_paths(out_dir, split, n_shards):
    return [os.path.join(out_dir, '%s-%05d.tfrecord' % (split, i)) for i in range(n_shards)]


def write_tfrecords(data_dir, out_dir, net, tasks, clips_per_shard=2000, log=None):
    """Convert a folder + ``labels.csv`` to TFRecords (see the module docstring).

    Returns ``{split: number of clips}``. Each shard is written atomically.
    """
    sr, n = net.sample_rate, int(np.prod(net.input_shape))
    counts = {}
    for split in SPLITS:
        paths, labels = read_labels(data_dir, tasks, split)
        counts[split] = len(paths)
        n_shards = max(1, -(-len(paths) // clips_per_shard))
        for s, out_path in enumerate(_shard_paths(out_dir, split, n_shards) if paths else []):
            lo, hi = s * clips_per_shard, min((s + 1) * clips_per_shard, len(paths))
            with atomic_path(out_path, '.tfrecord') as tmp:
                with tf.io.TFRecordWriter(tmp) as writer:
                    for i in range(lo, hi):
                        feature = {
                            'signal': tf.train.Feature(float_list=tf.train.FloatList(
                                value=load_clip(paths[i], sr, n))),
                            'path': tf.train.Feature(bytes_list=tf.train.BytesList(
                                value=[os.path.relpath(paths[i], data_dir).encode()]))}
                        for t in tasks:
                            feature['label_%s' % t.name] = tf.train.Feature(
                                int64_list=tf.train.Int64List(value=labels[t.name][i]))
                        writer.write(tf.train.Example(
                            features=tf.train.Features(feature=feature)).SerializeToString())
            if log:
                log('wrote %s (%d clips)' % (out_path, hi - lo))
    return counts


def tfrecord_files(data_dir, split):
    """The TFRecord files of a split in ``data_dir`` (``<split>-*.tfrecord``), sorted."""
    return sorted(glob.glob(os.path.join(data_dir, '%s-*.tfrecord' % split)))


def _tfrecord_dataset(files, n_samples, tasks):
    spec = {'signal': tf.io.FixedLenFeature([n_samples], tf.float32)}
    for t in tasks:
        spec['label_%s' % t.name] = tf.io.VarLenFeature(tf.int64)

    def parse(raw):
        ex = tf.io.parse_single_example(raw, spec)
        targets = {}
        for t in tasks:
            idx = tf.sparse.to_dense(ex['label_%s' % t.name])
            if t.kind == 'softmax':
                targets[t.name] = tf.cast(idx[0], tf.int32)
            else:
                # sum of one-hot rows (zeros when the clip has no label), capped at 1
                targets[t.name] = tf.minimum(tf.reduce_sum(
                    tf.one_hot(idx, t.n_classes, dtype=tf.float32), axis=0), 1.0)
        return ex['signal'], targets

    return tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def _folder_dataset(data_dir, split, net, tasks):
    paths, labels = read_labels(data_dir, tasks, split)
    encoder = LabelEncoder(tasks)
    sr, n = net.sample_rate, int(np.prod(net.input_shape))
    targets = {t.name: np.stack([encoder.target(k, idx) for idx in labels[t.name]])
               if paths else np.zeros([0] + ([] if t.kind == 'softmax' else [t.n_classes]))
               for k, t in enumerate(tasks)}
    ds = tf.data.Dataset.from_tensor_slices((paths, targets))

    def load(path, target):
        wave = tf.numpy_function(lambda p: load_clip(p.decode(), sr, n), [path], tf.float32)
        wave.set_shape([n])
        return wave, target

    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), len(paths)


def dataset(data_dir, split, net, tasks):
    """``(tf.data.Dataset of (waveform [T], {task: target}), number of clips)`` of one split.

    ``data_dir`` holds ``labels.csv`` (folder + CSV) or ``<split>-*.tfrecord`` files.
    """
    if not os.path.isdir(data_dir):
        raise DataError('data folder %s does not exist; make one with python -m '
                        'model_metamers.spoken_words --out=%s, or give a folder with labels.csv '
                        'or <split>-*.tfrecord files' % (data_dir, data_dir))
    if os.path.isfile(os.path.join(data_dir, 'labels.csv')):
        return _folder_dataset(data_dir, split, net, tasks)
    files = tfrecord_files(data_dir, split)
    if not files:
        raise DataError('%s has neither labels.csv nor %s-*.tfrecord files' % (data_dir, split))
    n = sum(1 for _ in tf.data.TFRecordDataset(files))
    return _tfrecord_dataset(files, int(np.prod(net.input_shape)), tasks), n


def to_numpy(ds, batch_size=256):
    """Materialise a dataset of ``(x, {task: y})`` as numpy ``(x, {task: y})``."""
    xs, ys = [], {}
    try:
        for x, y in ds.batch(batch_size):
            xs.append(x.numpy())
            for k, v in y.items():
                ys.setdefault(k, []).append(v.numpy())
    except tf.errors.OpError as exc:
        # load_clip's DataError comes back wrapped in a tf.data op error: give its own message.
        found = [line.split('DataError: ', 1)[1] for line in str(exc).splitlines() if 'DataError: ' in line]
        if found:
            raise DataError(found[0].strip()) from None
        raise
    if not xs:
        raise DataError('the data set split is empty')
    return np.concatenate(xs), {k: np.concatenate(v) for k, v in ys.items()}
