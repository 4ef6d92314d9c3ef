"""Null distributions: how similar are the activations of two unrelated natural stimuli?

For every metamer layer, Spearman rho (the 2019 criterion), Pearson r and the
dB SNR (2023 follow-up) between the activations of random pairs of natural
stimuli. A metamer passes only if its rho at the matched layer exceeds the
largest null rho (SPEC §5).

Fast path: each stimulus's activations are ranked once (ties get average
ranks) and standardised; the Spearman rho of a pair is then the mean product
of the two standardised rank vectors, and Pearson r the same on the raw
activations. A pair where either activation is constant (e.g. all zeros) gets
correlation 0 and is counted.

Usage (absl)::

    python -m model_metamers.null_distribution --network=word_reduced_aliasing \\
        --weights=checkpoints/word_reduced_aliasing.weights.h5 --dataset=speech_folder/ \\
        --num_pairs=1000000 --output=nulls/word_reduced_aliasing.h5
    # on a cluster: add --num_shards=100 --shard_index=$SLURM_ARRAY_TASK_ID, then
    python -m model_metamers.null_distribution --merge --output=nulls/word_reduced_aliasing.h5 \\
        --num_shards=100
    # a null distribution of the original release, as HDF5:
    python -m model_metamers.null_distribution \\
        --convert=word_reduced_aliasing_null_dist_spearman_r.pckl --output=nulls/wra.h5

Pairing (``--pairing``): ``random`` (default; random pairs of distinct stimuli,
drawn with replacement) or ``consecutive``, the 2023 code's
(``analysis_scripts/make_null_distributions.py`` as its submit scripts ran it,
``--no-shuffle``, e.g. 5 splits x 200,000 pairs): pair ``k`` is dataset examples
``2k`` and ``2k+1`` in order (wrapping round a dataset shorter than
``2 x num_pairs``), each example used once per pass, and with ``--augment`` each
example is first put through the training-time augmentation, drawn statelessly
from ``(seed, example position)`` so shards agree: audio, the time shift and
background mix of :mod:`model_metamers.training.augment` (needs
``--background_dir``); images, the 2023 code's ImageNet training transform of
:mod:`model_metamers.training.image_augment` (random resized crop of the
*original* image to the network's input side, flip, colour jitter, lighting),
so image files are decoded at full size for each use instead of centre-cropped
and resized. Shards split the pairs as for random pairs, which for consecutive
pairs is the 2023 split (``STARTIDX = 2 x N x SPLITIDX``)::

    python -m model_metamers.null_distribution --network=... --dataset=train/ \
        --pairing=consecutive --augment --background_dir=bg/ --num_pairs=1000000 \
        --num_shards=5 --shard_index=$K --output=nulls/net_2023.h5
    # an image network: no --background_dir
    python -m model_metamers.null_distribution --network=vgg_19 --dataset=imagenet_train/ \
        --pairing=consecutive --augment --num_pairs=1000000 --num_shards=5 --shard_index=$K \
        --output=nulls/vgg_19_2023.h5

Output: HDF5 with one group per layer holding ``spearman``, ``pearson``,
``snr_db`` (10 log10 of the power ratio), ``snr_db_2023`` (the 2023 code's
definition, 10 log10 of the ratio of norms; 0 where either activation sums to
zero, as that code sets it) (one value per pair) and ``pairs`` (stimulus
indices, the examples' dataset positions for consecutive pairs), with
attributes (network, weights, weights_sha1, dataset, seed, number of stimuli
and pairs, feature count). Generation and reports refuse a null made for
another network or other weights (:func:`check_matches`); ``--merge`` refuses
shards made with other settings.
"""

import os
import sys

import h5py
import numpy as np

from model_metamers import custom_network_flags, interrupts
from model_metamers.errors import UserError
from model_metamers.fileio import atomic_path, decoded, h5_name
from model_metamers.validation import rank_average

FORMAT = 'model_metamers.null.v1'


class NullDistributionError(UserError, ValueError):
    """Bad dataset or shard arguments for a null distribution."""


PAIRINGS = ('random', 'consecutive')
SNR_DB_DEFINITION = '10*log10(sum(a^2)/sum((a-b)^2)) [power ratio; a the first of the pair]'
SNR_DB_2023_DEFINITION = ('10*log10(||a||_2/||a-b||_2) [ratio of norms, Feather 2023 distance_measures.'
                          'compute_snr_db; 0 when sum(a) or sum(b) is 0, as make_null_distributions.py]')


class NullMismatchError(NullDistributionError):
    """A null distribution made for another network or other weights."""


# ------------------------------------------------------------- provenance
def read_info(path):
    """The file attributes of a null distribution (``network``, ``weights``, ``weights_sha1``, ...).

    ``{}`` for a file that is not HDF5 (e.g. a published pickle, which records
    no network) or records nothing; :func:`check_matches` then has nothing to refuse.
    """
    if not (os.path.isfile(path) and h5py.is_hdf5(path)):
        return {}
    with h5py.File(path, 'r') as f:
        return {k: decoded(v) for k, v in f.attrs.items()}


def check_matches(null, network_name, weights_sha1=None, source=None):
    """Refuse a null distribution made for another network or with other weights.

    Args:
      null: the null file's path, or its attributes as a dict (see :func:`read_info`);
        a published null that records no network can be passed as
        ``{'network': <network its file name names>}``.
      network_name: the network the metamers are (or were) made with.
      weights_sha1: SHA-1 of their weight files (``model_metamers.weights.weights_fingerprint``),
        or None when unknown; only checked when the null records one too.
      source: the null's name in messages (default: its path).

    Raises :class:`NullMismatchError` (one line, with the fix).
    """
    info = read_info(null) if isinstance(null, str) else dict(null or {})
    source = source or (null if isinstance(null, str) else 'the null distribution')
    made_for = info.get('network')
    made_for = decoded(made_for)
    if made_for and made_for != network_name:
        raise NullMismatchError(
            '%s was computed for network %s, not %s; compute a null for %s (python -m '
            'model_metamers.null_distribution --network=%s --dataset=...) and pass that'
            % (source, made_for, network_name, network_name, network_name))
    made_with = info.get('weights_sha1')
    made_with = decoded(made_with)
    if made_for and made_with and weights_sha1 and made_with != weights_sha1:
        raise NullMismatchError(
            '%s was computed with other weights of %s (%s, SHA-1 %s) than these (SHA-1 %s); '
            'compute the null again with the weights the metamers were made with'
            % (source, network_name, info.get('weights', '?'), made_with[:12], weights_sha1[:12]))


# ------------------------------------------------------------------ datasets
def list_dataset(path, modality):
    """Stimulus sources of a dataset: sorted files of a folder, or records of TFRecord files."""
    from model_metamers.stimuli import input_extensions

    ext = input_extensions(modality)
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(ext))
        if len(files) < 2:
            raise NullDistributionError('%s holds %d %s file(s); a null needs at least 2'
                                        % (path, len(files), modality))
        return files
    if path.endswith(('.tfrecord', '.tfrecords')) or '*' in path:
        import glob
        files = sorted(glob.glob(path))
        if not files:
            raise NullDistributionError('no TFRecord files match %s' % path)
        return files
    raise NullDistributionError('dataset %s is neither a folder of %s files nor TFRecord files'
                                % (path, '/'.join(ext)))


def load_stimuli(network, sources, feature='signal'):
    """All stimuli of a dataset as ``[N] + network.input_shape`` float32.

    Folders go through the normal loaders (audio: mono, 20 kHz, 2 s, RMS 0.1;
    images: centre crop, resize, [0, 1]). TFRecords: each record's ``feature``
    is a float list (a waveform, prepared like a file) or bytes (an encoded image).
    """
    from model_metamers.stimuli import load_stimulus

    if sources and sources[0].endswith(('.tfrecord', '.tfrecords')):
        return _load_tfrecords(network, sources, feature)
    return np.stack([load_stimulus(network, s) for s in sources])


class SourceImages:
    """The original images of a dataset, decoded when indexed (for the image augmentation).

    ``images[indices]`` (an index array) is a list of uint8 ``[H, W, 3]`` arrays at
    full size: the 2023 random resized crop acts on the original image, so they
    are neither centre-cropped nor resized here. Files are read on each use and
    TFRecord images kept encoded, so memory holds the dataset's bytes at most.
    """

    def __init__(self, files=(), encoded=()):
        self._files = list(files)
        self._encoded = list(encoded)

    def __len__(self):
        return len(self._files) or len(self._encoded)

    def __getitem__(self, indices):
        from model_metamers import images

        if self._files:
            return [images.read_rgb(self._files[int(i)]) for i in np.ravel(indices)]
        return [_decode_image(self._encoded[int(i)], int(i)) for i in np.ravel(indices)]


def source_images(sources, feature='signal'):
    """:class:`SourceImages` of a dataset's sources (image files, or TFRecords whose ``feature`` is bytes)."""
    if not (sources and sources[0].endswith(('.tfrecord', '.tfrecords'))):
        return SourceImages(files=sources)
    encoded = [_encoded_image(stored, feature, index)
               for index, stored in enumerate(_tfrecord_features(sources, feature))]
    if len(encoded) < 2:
        raise NullDistributionError('the TFRecords hold %d image; a null needs at least 2' % len(encoded))
    return SourceImages(encoded=encoded)


def _tfrecord_features(files, feature):
    """Each example's ``feature`` (a ``tf.train.Feature``) from TFRecord files, in file order."""
    import tensorflow as tf

    for raw in tf.data.TFRecordDataset(files):
        example = tf.train.Example.FromString(raw.numpy())
        if feature not in example.features.feature:
            raise NullDistributionError('TFRecord examples have no feature %r (they have %s)'
                                        % (feature, ', '.join(example.features.feature)))
        yield example.features.feature[feature]


def _encoded_image(stored, feature, index):
    """The encoded image bytes of example ``index``'s ``feature`` (a ``tf.train.Feature``)."""
    if not stored.bytes_list.value:
        raise NullDistributionError('TFRecord feature %r of example %d holds no encoded image (bytes); pass '
                                    '--tfrecord_feature=<the image feature>' % (feature, index))
    return stored.bytes_list.value[0]


def _decode_image(encoded, index):
    """uint8 ``[H, W, 3]`` of an encoded image (TFRecord example ``index``), or a one-line error."""
    import tensorflow as tf

    try:
        return tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False).numpy()
    except tf.errors.OpError:
        raise NullDistributionError('TFRecord example %d holds no image TensorFlow can decode '
                                    '(PNG, JPEG, GIF, BMP); re-encode it' % index) from None


def _load_tfrecords(network, files, feature):
    from model_metamers import audio, images

    out = []
    for index, value in enumerate(_tfrecord_features(files, feature)):
        if network.modality == 'audio':
            if not value.float_list.value:  # e.g. an encoded image: not a silent sound
                raise NullDistributionError('TFRecord feature %r of example %d holds no waveform (floats); '
                                            'pass --tfrecord_feature=<the waveform feature>' % (feature, index))
            wave = np.asarray(value.float_list.value, np.float64)
            n = int(np.prod(network.input_shape))
            out.append(audio.normalize_rms(audio.fit_length(wave, n)).astype(np.float32))
        else:
            out.append(images.prepare_image(_decode_image(_encoded_image(value, feature, index), index),
                                            network.input_shape[0]))
    if len(out) < 2:
        raise NullDistributionError('the TFRecords hold %d stimulus; a null needs at least 2' % len(out))
    return np.stack(out)


# --------------------------------------------------------------- statistics
def standardize(values):
    """Centre and scale to unit RMS (float32 out); constant input gives zeros."""
    v = np.asarray(values, np.float64).ravel()
    v = v - v.mean()
    norm = np.sqrt(np.mean(v ** 2))
    if norm == 0 or not np.isfinite(norm):
        return np.zeros(v.shape, np.float32)
    return (v / norm).astype(np.float32)


class LayerSummary:
    """Per-stimulus standardised ranks, standardised values and moments at one layer.

    ``rank_z``, ``raw_z``: ``[N, F]`` float32; ``mean``, ``std``, ``sumsq``: ``[N]`` float64.
    """

    def __init__(self, activations):
        acts = np.asarray(activations).reshape(len(activations), -1)
        n, f = acts.shape
        self.n_features = f
        self.rank_z = np.empty((n, f), np.float32)
        self.raw_z = np.empty((n, f), np.float32)
        self.mean = np.empty(n)
        self.std = np.empty(n)
        self.sumsq = np.empty(n)
        self.total = np.empty(n)
        for i in range(n):
            a = acts[i].astype(np.float64)
            self.rank_z[i] = standardize(rank_average(a))
            self.raw_z[i] = standardize(a)
            self.mean[i] = a.mean()
            self.std[i] = a.std()
            self.sumsq[i] = np.dot(a, a)
            self.total[i] = a.sum()

    def pair_statistics(self, pairs, block=256):
        """``(spearman, pearson, snr_db)`` arrays for ``pairs`` ``[P, 2]`` of stimulus indices.

        SNR treats the first stimulus of a pair as the signal:
        ``10 log10(|a|^2 / |a - b|^2)``. Dot products accumulate in float64 (rho
        near 1 must not lose digits): pairs are grouped by their first stimulus,
        whose vectors are converted once, and its partners (at most ``block`` at
        a time) go through one BLAS matrix-vector product.
        """
        pairs = np.asarray(pairs, np.int64)
        spear = np.empty(len(pairs))
        pear = np.empty(len(pairs))
        f = float(self.n_features)
        order = np.argsort(pairs[:, 0], kind='stable')
        firsts = pairs[order, 0]
        bounds = np.flatnonzero(np.diff(firsts)) + 1
        for group in np.split(order, bounds):
            if not len(group):
                continue
            first = pairs[group[0], 0]
            rank_a = self.rank_z[first].astype(np.float64)
            raw_a = self.raw_z[first].astype(np.float64)
            for start in range(0, len(group), block):
                idx = group[start:start + block]
                partners = pairs[idx, 1]
                spear[idx] = self.rank_z[partners].astype(np.float64) @ rank_a / f
                pear[idx] = self.raw_z[partners].astype(np.float64) @ raw_a / f
        a, b = pairs[:, 0], pairs[:, 1]
        cross = f * (self.std[a] * self.std[b] * pear + self.mean[a] * self.mean[b])
        diff = np.maximum(self.sumsq[a] + self.sumsq[b] - 2 * cross, 0)
        with np.errstate(divide='ignore', invalid='ignore'):
            snr = 10 * np.log10(self.sumsq[a] / diff)
        return spear, pear, snr

    def snr_db_2023(self, pairs, snr_db):
        """The 2023 code's dB SNR of ``pairs`` from their power SNR ``snr_db``.

        ``10 log10(||a|| / ||a - b||)`` is half the power SNR; a pair where either
        activation sums to zero gets 0 (``make_null_distributions.py``).
        """
        pairs = np.asarray(pairs, np.int64)
        out = np.asarray(snr_db, np.float64) / 2.0
        zero = (self.total[pairs[:, 0]] == 0) | (self.total[pairs[:, 1]] == 0)
        return np.where(zero, 0.0, out)


def sample_pairs(n_stimuli, num_pairs, seed=0):
    """``[num_pairs, 2]`` random pairs of distinct stimulus indices (with replacement across pairs)."""
    if n_stimuli < 2:
        raise NullDistributionError('a null needs at least 2 stimuli, got %d' % n_stimuli)
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n_stimuli, num_pairs)
    # Shift the second index by 1..n-1 so the two are always different.
    second = (first + rng.integers(1, n_stimuli, num_pairs)) % n_stimuli
    return np.stack([first, second], axis=1)


def consecutive_pairs(n_stimuli, num_pairs):
    """``[num_pairs, 2]``: pair ``k`` is examples ``2k`` and ``2k+1`` (modulo ``n_stimuli``).

    The 2023 null's pairing (consecutive training examples, no shuffle). Example
    positions, not dataset indices: position ``p`` is dataset example ``p % n_stimuli``.
    """
    if n_stimuli < 2:
        raise NullDistributionError('a null needs at least 2 stimuli, got %d' % n_stimuli)
    first = 2 * np.arange(num_pairs, dtype=np.int64)
    return np.stack([first, first + 1], axis=1)


def check_settings(num_pairs, seed=0, batch_size=1, num_shards=1):
    """Reject counts no null can be computed with, before the network or data are loaded."""
    if num_pairs < 1:
        raise NullDistributionError('--num_pairs must be at least 1, got %d; the paper uses '
                                    '--num_pairs=1000000' % num_pairs)
    if num_shards >= 1 and num_pairs < num_shards:
        raise NullDistributionError('%d pairs cannot be split over %d shards (some would get none); '
                                    'use --num_shards=%d or more pairs' % (num_pairs, num_shards, num_pairs))
    if seed < 0:
        raise NullDistributionError('--seed must be 0 or more, got %d' % seed)
    if batch_size < 1:
        raise NullDistributionError('--batch_size must be at least 1, got %d; pass e.g. --batch_size=8'
                                    % batch_size)


def shard_slice(num_pairs, num_shards, shard_index):
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        if num_shards < 1:
            raise NullDistributionError('--num_shards must be at least 1, got %d; pass e.g. '
                                        '--num_shards=10' % num_shards)
        raise NullDistributionError('--shard_index must be in 0 .. %d for --num_shards=%d, got %d; pass '
                                    'e.g. --shard_index=0' % (num_shards - 1, num_shards, shard_index))
    bounds = np.linspace(0, num_pairs, num_shards + 1).astype(np.int64)
    return slice(bounds[shard_index], bounds[shard_index + 1])


# ------------------------------------------------------------------ compute
def compute_null(network, stimuli, layers=None, num_pairs=1000, seed=0, num_shards=1, shard_index=0,
                 batch_size=8, log=None, pairing='random', augment=None):
    """Null statistics for this shard's pairs.

    Args:
      pairing: ``'random'`` (:func:`sample_pairs`) or ``'consecutive'``
        (:func:`consecutive_pairs`, the 2023 code's).
      stimuli: ``[N] + network.input_shape`` array; with ``augment``, anything
        indexable by an index array that ``augment`` takes (e.g. :class:`SourceImages`).
      augment: optional ``augment(stimuli[indices], positions [b]) -> [b] + shape``
        applied to each example before the network (consecutive pairing only:
        every example position is its own augmented draw).

    Returns ``{layer: {'spearman', 'pearson', 'snr_db', 'snr_db_2023', 'pairs'}}``.
    Only the stimuli this shard's pairs use are passed through the network.
    """
    log = log or (lambda msg: None)
    check_settings(num_pairs, seed, batch_size, num_shards)
    if pairing not in PAIRINGS:
        raise NullDistributionError('--pairing must be one of %s, got %r' % (', '.join(PAIRINGS), pairing))
    if augment is not None and pairing != 'consecutive':
        raise NullDistributionError('--augment goes with --pairing=consecutive (the 2023 null); '
                                    'random pairs reuse stimuli across pairs')
    layers = list(layers) if layers else list(network.metamer_layers)
    if network.logits_stage not in [network.resolve(n) for n in layers]:
        layers.append(network.logits_stage)
    part = shard_slice(num_pairs, num_shards, shard_index)
    if pairing == 'consecutive':
        pairs = consecutive_pairs(len(stimuli), num_pairs)[part]
        used = pairs.ravel()  # every position its own example (and augmentation draw)
        local = np.arange(len(used), dtype=np.int64).reshape(-1, 2)
    else:
        pairs = sample_pairs(len(stimuli), num_pairs, seed)[part]
        used = np.unique(pairs)
        remap = np.full(len(stimuli), -1, np.int64)
        remap[used] = np.arange(len(used))
        local = remap[pairs]
    acts = {layer: [] for layer in layers}
    for start in range(0, len(used), batch_size):
        interrupts.check()
        positions = used[start:start + batch_size]
        batch = stimuli[positions % len(stimuli)]
        if augment is not None:
            batch = augment(batch, positions)
        out = network.activations(batch, layers)
        for layer in layers:
            acts[layer].append(out[layer].numpy())
        log('activations %d/%d' % (min(start + batch_size, len(used)), len(used)))
    result = {}
    for layer in layers:
        summary = LayerSummary(np.concatenate(acts[layer]))
        acts[layer] = None
        spear, pear, snr = summary.pair_statistics(local)
        result[layer] = {'spearman': spear, 'pearson': pear, 'snr_db': snr,
                         'snr_db_2023': summary.snr_db_2023(local, snr), 'pairs': pairs,
                         'n_features': summary.n_features}
        log('%s: %d pairs, max rho %.4f' % (layer, len(pairs), np.max(spear) if len(spear) else np.nan))
    return result


def write_null(path, result, attrs, compact=False):
    """Write a (shard's) null distribution atomically.

    ``compact``: float32 values, gzip-compressed, and no ``pairs`` dataset (the
    pairs are ``sample_pairs(n_stimuli, num_pairs, seed)`` again): about 5 MB
    for 100,000 pairs at five layers, small enough to ship in git.
    """
    with atomic_path(path, '.h5') as tmp:
        with h5py.File(tmp, 'w') as f:
            f.attrs['format'] = FORMAT
            for k, v in attrs.items():
                f.attrs[k] = v
            if compact:
                f.attrs['compact'] = True
            f.attrs['snr_db_definition'] = SNR_DB_DEFINITION
            if any('snr_db_2023' in data for data in result.values()):
                f.attrs['snr_db_2023_definition'] = SNR_DB_2023_DEFINITION
            for layer, data in result.items():
                g = f.create_group(h5_name(layer))
                for k in ('spearman', 'pearson', 'snr_db', 'snr_db_2023', 'pairs'):
                    if k not in data:  # a converted published null has Spearman rho only
                        continue
                    if compact and k == 'pairs':
                        continue
                    if compact:
                        g.create_dataset(k, data=np.asarray(data[k], np.float32), compression='gzip',
                                         compression_opts=9, shuffle=True)
                    else:
                        g.create_dataset(k, data=data[k])
                g.attrs['n_features'] = data['n_features']
                g.attrs['max_spearman'] = float(np.max(data['spearman'])) if len(data['spearman']) else np.nan


def convert_published(source, output, network=None):
    """Write the project's HDF5 form of a published ``*_null_dist_spearman_r.pckl``.

    ``network``: the network the null belongs to; default from the file name
    (:data:`published_nulls.FILES`). The pickle is read as data only. Returns
    ``(output, network, {layer: number of pairs})``.
    """
    from model_metamers import published_nulls

    source = os.path.expanduser(source)
    named = published_nulls.network_of(source)
    if network and named and network != named:
        raise NullDistributionError('%s is the published null of %s, not of --network=%s; drop '
                                    '--network or give the file of %s'
                                    % (source, named, network, network))
    network = network or named
    if not network:
        raise NullDistributionError('cannot tell which network %s belongs to (published files: %s); '
                                    'add --network=NAME' % (source, ', '.join(
                                        sorted(published_nulls.FILES.values()))))
    rho = published_nulls.read(source)
    result = {layer: {'spearman': values, 'n_features': -1} for layer, values in rho.items()}
    write_null(output, result, {'network': network, 'weights': 'published',
                                'source': os.path.abspath(source), 'seed': -1,
                                'num_pairs': max(len(v) for v in rho.values()),
                                'num_shards': 1, 'converted_from': 'published pickle'})
    return output, network, {layer: len(v) for layer, v in rho.items()}


def shard_path(output, num_shards, shard_index):
    if num_shards == 1:
        return output
    root, ext = os.path.splitext(output)
    return '%s.shard-%05d-of-%05d%s' % (root, shard_index, num_shards, ext or '.h5')


# Attributes every shard of one null must share (shard_index differs by design).
SHARED_ATTRS = ('network', 'weights', 'weights_sha1', 'dataset', 'seed', 'num_pairs', 'n_stimuli',
                'num_shards', 'pairing', 'augment')


def find_num_shards(output):
    """The shard count of the shard files of ``output`` on disk (for ``--merge`` without ``--num_shards``)."""
    import glob
    import re

    root, ext = os.path.splitext(output)
    pattern = re.compile(re.escape(os.path.basename(root)) + r'\.shard-\d{5}-of-(\d{5})'
                         + re.escape(ext or '.h5') + '$')
    counts = {int(m.group(1)) for m in (pattern.match(os.path.basename(p))
                                        for p in glob.glob(glob.escape(root) + '.shard-*'))
              if m}
    if not counts:
        raise NullDistributionError('cannot merge: no shard files %s.shard-*-of-*%s; run the shards '
                                    '(--num_shards=N --shard_index=K) first' % (root, ext or '.h5'))
    if len(counts) > 1:
        raise NullDistributionError('cannot merge: shard files of %s for %s different --num_shards '
                                    '(%s) lie side by side; pass --num_shards=N to choose'
                                    % (output, len(counts), ', '.join(map(str, sorted(counts)))))
    return counts.pop()


def _attr(value):
    value = decoded(value)
    return value.item() if isinstance(value, np.generic) else value


def merge_shards(output, num_shards=None, compact=False):
    """Concatenate shard files (in shard order) into ``output``; every shard must exist.

    ``num_shards`` None: found from the shard files on disk. Shards made with
    other settings (network, weights, dataset, seed, pair count, layers) are
    refused: their pairs would not partition one sample.
    """
    if num_shards is None:
        num_shards = find_num_shards(output)
    if num_shards < 2:
        raise NullDistributionError('--merge joins the shards of a run with --num_shards=2 or more, '
                                    'got --num_shards=%d; nothing to merge' % num_shards)
    paths = [shard_path(output, num_shards, k) for k in range(num_shards)]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise NullDistributionError('cannot merge: %d shard file(s) missing, e.g. %s; rerun those shards'
                                    % (len(missing), missing[0]))
    keys = ['spearman', 'pearson', 'snr_db', 'pairs']
    with h5py.File(paths[0], 'r') as f:  # shards written before issue 20 have no snr_db_2023
        if all('snr_db_2023' in f[layer] for layer in f):
            keys.append('snr_db_2023')
    merged = {}
    attrs = None
    for k, p in enumerate(paths):
        with h5py.File(p, 'r') as f:
            these = {a: _attr(v) for a, v in f.attrs.items() if a != 'shard_index'}
            if 'shard_index' in f.attrs and int(f.attrs['shard_index']) != k:
                raise NullDistributionError('cannot merge: %s says it is shard %d, not %d; rerun it'
                                            % (p, int(f.attrs['shard_index']), k))
            if attrs is None:
                attrs, first, layers = these, p, set(f)
            else:
                differ = [a for a in SHARED_ATTRS
                          if (a in attrs or a in these) and attrs.get(a) != these.get(a)]
                if differ:
                    raise NullDistributionError(
                        'cannot merge: %s and %s were made with different %s (%s); rerun the odd '
                        'shard(s) with the same settings' % (
                            first, p, ', '.join(differ),
                            '; '.join('%s %r vs %r' % (a, attrs.get(a), these.get(a)) for a in differ)))
                if set(f) != layers:
                    raise NullDistributionError(
                        'cannot merge: %s and %s hold different layers (%s vs %s); rerun the odd '
                        'shard(s) with the same --layers' % (first, p, ', '.join(sorted(layers)),
                                                            ', '.join(sorted(f))))
            for layer in f:
                entry = merged.setdefault(layer, {k: [] for k in keys})
                entry['n_features'] = int(f[layer].attrs['n_features'])
                for key in keys:
                    entry[key].append(f[layer][key][()])
    result = {layer: dict({k: np.concatenate(v[k]) for k in keys}, n_features=v['n_features'])
              for layer, v in merged.items()}
    attrs['num_shards'] = num_shards
    write_null(output, result, attrs, compact=compact)
    return output


def consecutive_note(n_stimuli, num_pairs):
    """A note when consecutive pairs wrap round the dataset (examples used more than once), else None."""
    if 2 * num_pairs <= n_stimuli:
        return None
    return ('note: %d consecutive pairs need %d examples, the dataset has %d; positions wrap round it, '
            'so examples are used %.1f times (with --augment each use is a new augmentation draw)'
            % (num_pairs, 2 * num_pairs, n_stimuli, 2.0 * num_pairs / n_stimuli))


def training_augmentation(network, background_dir, seed=0, max_shift_s=0.25, snr_low=-10.0,
                          snr_high=10.0):
    """``augment(batch, positions)``: the training pipeline's audio augmentation per example.

    Each example position gets its own stateless draw (``seed``, epoch 0, index =
    position): the same position gives the same augmented stimulus in every shard.
    Image networks: :func:`image_training_augmentation`.
    """
    if network.modality == 'image':
        raise NullDistributionError('%s is an image network: its augmentation is '
                                    'image_training_augmentation, which needs no background clips'
                                    % network.name)
    if network.modality != 'audio' or len(network.input_shape) != 1:
        raise NullDistributionError('--augment is implemented for waveform and image networks; %s '
                                    'takes %s input of shape %s: drop --augment'
                                    % (network.name, network.modality, tuple(network.input_shape)))
    import tensorflow as tf
    from model_metamers.training import augment as _augment

    n = int(network.input_shape[0])
    try:
        backgrounds, lengths = _augment.load_backgrounds(background_dir, network.sample_rate, n)
        mix = _augment.make_mixer(backgrounds, lengths, n, int(round(max_shift_s * network.sample_rate)),
                                  snr_low, snr_high, seed)
    except _augment.AugmentError as exc:
        raise NullDistributionError(str(exc)) from None

    def augment(batch, positions):
        return np.stack([mix(tf.constant(w), 0, int(p)).numpy() for w, p in zip(batch, positions)])

    return augment


def image_training_augmentation(network, seed=0):
    """``augment(images, positions)``: the 2023 ImageNet training augmentation per example.

    ``images``: uint8 ``[H, W, 3]`` originals (:class:`SourceImages`); returns float32
    ``[b] + network.input_shape``, the crop resized to the network's input side.
    Each position gets its own stateless draw from ``(seed, position)``
    (:mod:`model_metamers.training.image_augment`): shards agree.
    """
    if network.modality != 'image':
        raise NullDistributionError('%s takes %s input, not images: its --augment is the waveform '
                                    'augmentation (training_augmentation, with --background_dir)'
                                    % (network.name, network.modality))
    from model_metamers.training import image_augment

    size = int(network.input_shape[0])

    def augment(batch, positions):
        return np.stack([image_augment.augment(image, seed, int(p), size)
                         for image, p in zip(batch, positions)])

    return augment


# Flags of the waveform augmentation, which image networks refuse (they would do nothing).
AUDIO_AUGMENT_FLAGS = ('background_dir', 'max_shift_s', 'snr_low', 'snr_high')


def check_augment(modality, pairing, augment, given=()):
    """Refuse augmentation settings that do not apply, before anything is loaded.

    Args:
      modality: ``'audio'`` or ``'image'`` (the network's).
      pairing: ``--pairing``; ``augment``: ``--augment``.
      given: names of the waveform augmentation flags set on the command line
        (of :data:`AUDIO_AUGMENT_FLAGS`).
    """
    if not augment:
        return
    if pairing != 'consecutive':
        raise NullDistributionError('--augment goes with --pairing=consecutive (the 2023 null)')
    if modality == 'image':
        extra = [name for name in AUDIO_AUGMENT_FLAGS if name in given]
        if extra:
            raise NullDistributionError(
                '--%s is for the waveform augmentation; an image network\'s --augment (crop, flip, '
                'colour jitter, lighting) takes none: drop --%s' % (extra[0], ' --'.join(extra)))
    elif 'background_dir' not in given:
        raise NullDistributionError('--augment needs --background_dir (a folder of background WAV '
                                    'clips, as for training)')


def image_augment_description(network):
    """The ``augment`` attribute of an augmented image null (names the crop side)."""
    from model_metamers.training import image_augment

    return '%s; crop side %d' % (image_augment.DESCRIPTION, int(network.input_shape[0]))


def distinct_pairs_note(n_stimuli, num_pairs, seed=0):
    """A note when ``num_pairs`` exceeds what ``n_stimuli`` can give, else None.

    ``n (n - 1) / 2`` unordered pairs of different stimuli exist; asking for
    more draws some pairs twice (the null's maximum is unchanged by a repeat).
    """
    possible = n_stimuli * (n_stimuli - 1) // 2
    if num_pairs <= possible:
        return None
    pairs = np.sort(sample_pairs(n_stimuli, num_pairs, seed), axis=1)
    drawn = len(np.unique(pairs, axis=0))
    return ('note: %d pairs asked, but %d stimuli give only %d distinct pairs; %d distinct pairs were '
            'drawn (the rest repeat them); use a larger --dataset for more independent pairs'
            % (num_pairs, n_stimuli, possible, drawn))


# ----------------------------------------------------------------------- CLI
def main(argv):
    from absl import flags

    FLAGS = flags.FLAGS
    from model_metamers import networks
    from model_metamers.errors import USER_ERRORS
    from model_metamers.networks import custom

    try:
        if FLAGS.convert:
            out, network, counts = convert_published(
                FLAGS.convert, FLAGS.output, FLAGS.network if FLAGS['network'].present else None)
            print('wrote %s (%s, %s)' % (out, network, ', '.join(
                '%s: %d pairs' % kv for kv in counts.items())))
            return 0
        if FLAGS.merge:
            num_shards = FLAGS.num_shards if FLAGS['num_shards'].present else find_num_shards(FLAGS.output)
            out = merge_shards(FLAGS.output, num_shards, compact=FLAGS.compact)
            print('merged %d shard(s) into %s' % (num_shards, out))
            return 0
        if not FLAGS.dataset:
            raise NullDistributionError('--dataset is required (a folder of stimuli or TFRecord files)')
        check_settings(FLAGS.num_pairs, FLAGS.seed, FLAGS.batch_size, FLAGS.num_shards)
        shard_slice(FLAGS.num_pairs, FLAGS.num_shards, FLAGS.shard_index)
        audio_flags = [n for n in AUDIO_AUGMENT_FLAGS if FLAGS[n].present and
                       (n != 'background_dir' or FLAGS.background_dir)]
        own_model = custom.is_spec(FLAGS.network)  # its modality is known once it is loaded
        if not own_model:
            check_augment(networks.modality_of(FLAGS.network), FLAGS.pairing, FLAGS.augment, audio_flags)
        folder = os.path.dirname(os.path.abspath(FLAGS.output))
        try:  # before the network runs: a long job must not fail at its last step
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise NullDistributionError('cannot create %s for --output (%s); choose a writable '
                                        '--output' % (folder, exc.strerror or exc))
        net, weights, weights_sha1 = networks.load(FLAGS.network, FLAGS.weights,
                                                   **custom_network_flags.options_from_flags(FLAGS))
        if own_model:
            check_augment(net.modality, FLAGS.pairing, FLAGS.augment, audio_flags)
        layers = [s for s in FLAGS.layers.split(',') if s] if FLAGS.layers else None
        for layer in layers or []:
            net.resolve(layer)
        sources = list_dataset(FLAGS.dataset, net.modality)
        image_augment = FLAGS.augment and net.modality == 'image'
        stimuli = (source_images(sources, FLAGS.tfrecord_feature) if image_augment
                   else load_stimuli(net, sources, FLAGS.tfrecord_feature))
        note = (distinct_pairs_note(len(stimuli), FLAGS.num_pairs, FLAGS.seed)
                if FLAGS.pairing == 'random' else consecutive_note(len(stimuli), FLAGS.num_pairs))
        if note:
            print(note, file=sys.stderr)
        if image_augment:
            augment = image_training_augmentation(net, FLAGS.seed)
            described = image_augment_description(net)
        elif FLAGS.augment:
            augment = training_augmentation(net, FLAGS.background_dir, FLAGS.seed, FLAGS.max_shift_s,
                                            FLAGS.snr_low, FLAGS.snr_high)
            described = ('time shift <= %g s, background mix %g..%g dB, %s'
                         % (FLAGS.max_shift_s, FLAGS.snr_low, FLAGS.snr_high, FLAGS.background_dir))
        else:
            augment, described = None, 'none'
        result = compute_null(net, stimuli, layers, FLAGS.num_pairs, FLAGS.seed, FLAGS.num_shards,
                              FLAGS.shard_index, FLAGS.batch_size,
                              log=lambda m: print(m, file=sys.stderr), pairing=FLAGS.pairing,
                              augment=augment)
        path = shard_path(FLAGS.output, FLAGS.num_shards, FLAGS.shard_index)
        write_null(path, result, {'network': net.name, 'weights': str(weights),
                                  'weights_sha1': weights_sha1,
                                  'dataset': FLAGS.dataset, 'seed': FLAGS.seed,
                                  'num_pairs': FLAGS.num_pairs, 'n_stimuli': len(stimuli),
                                  'shard_index': FLAGS.shard_index, 'num_shards': FLAGS.num_shards,
                                  'pairing': FLAGS.pairing,
                                  'augment': described},
                   compact=FLAGS.compact and FLAGS.num_shards == 1)  # shards keep their pairs for --merge
        print('wrote %s' % path)
        return 0
    except USER_ERRORS as exc:  # NullDistributionError among them
        print('error: %s' % exc, file=sys.stderr)
        return 1


def _define_flags():
    from absl import flags
    flags.DEFINE_string('network', 'word_reduced_aliasing', 'registered network name, or your own '
                        'Keras model: path/to/model.keras or package.module:function')
    custom_network_flags.define_flags()
    flags.DEFINE_string('weights', 'auto', "'auto', 'random', a .weights.h5 file or a checkpoint prefix")
    flags.DEFINE_string('dataset', None, 'folder of natural stimuli, or TFRecord file(s) (glob)')
    flags.DEFINE_string('tfrecord_feature', 'signal', 'TFRecord feature holding the waveform / encoded image')
    flags.DEFINE_string('layers', None, 'comma-separated layers (default: metamer layers + logits)')
    flags.DEFINE_integer('num_pairs', 1000000, 'pairs of stimuli (paper: 1,000,000; 2023: 5 shards '
                         'x 200,000)')
    flags.DEFINE_enum('pairing', 'random', list(PAIRINGS), "'random' pairs of distinct stimuli (ours), "
                      "or 'consecutive' examples 2k, 2k+1 in dataset order (the 2023 code's)")
    flags.DEFINE_boolean('augment', False, 'with --pairing=consecutive: the training-time augmentation '
                         'on every example, as the 2023 null (audio: time shift and background mix, '
                         'needs --background_dir; images: random resized crop of the original image to '
                         'the input side, flip, colour jitter, lighting)')
    flags.DEFINE_string('background_dir', None, 'with --augment, audio networks: folder of background '
                        'WAV clips')
    flags.DEFINE_float('max_shift_s', 0.25, 'with --augment: largest random time shift, seconds')
    flags.DEFINE_float('snr_low', -10.0, 'with --augment: lowest SNR of the background mix, dB')
    flags.DEFINE_float('snr_high', 10.0, 'with --augment: highest SNR of the background mix, dB')
    flags.DEFINE_integer('seed', 0, 'seed of the pair sampling')
    flags.DEFINE_integer('batch_size', 8, 'stimuli per forward pass')
    flags.DEFINE_integer('num_shards', 1, 'split the pairs over this many jobs (with --merge: '
                         'default found from the shard files)')
    flags.DEFINE_integer('shard_index', 0, 'this job (0-based)')
    flags.DEFINE_boolean('merge', False, 'merge the shard files of --output and exit')
    flags.DEFINE_boolean('compact', False, 'write float32, compressed, without the pair indices (they '
                         'follow from --seed): a null small enough to ship; with shards, applies to '
                         'the --merge output')
    flags.DEFINE_string('convert', None, "a published *_null_dist_spearman_r.pckl of the original "
                        "release: write it to --output in this project's HDF5 form and exit")
    flags.DEFINE_string('output', 'null_distribution.h5', 'output HDF5 file')


if __name__ == '__main__':
    from model_metamers import cli
    cli.run(main, _define_flags)
