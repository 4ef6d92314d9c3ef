"""Is a synthesised stimulus a metamer? (Feather et al. 2019, §3.1 and Fig. 2; 2023 follow-up)

``feather2019`` (the paper): a metamer counts only if (1) the network's
predicted class for it equals that of the natural stimulus and (2) the Spearman
rho between metamer and natural activations at the matched layer is above the
largest value of a null distribution (rho between activations of random pairs
of natural stimuli).

``feather2023`` (the follow-up's code, ``analysis_scripts/optimization_analysis_scripts.py``
``print_null_dist`` and ``get_metamer_distances_*``): the same class (images: the
16-category task, ``helpers_16_choice.force_16_choice``), and at the matched layer
Spearman rho, Pearson r **and** dB SNR each at least the maximum of their null
distribution; a metamer below any of the three overlaps the null and fails.
The dB SNR is ``distance_measures.compute_snr_db``'s: :data:`SNR_DB_2023`.
"""

import dataclasses
import math

import h5py
import numpy as np
import scipy.stats

from model_metamers import published_nulls, safe_pickle
from model_metamers.fileio import key_of_h5_name


def rank_average(values):
    """Ranks (1-based, ties get the average rank) of a 1-D array, float64."""
    return scipy.stats.rankdata(np.asarray(values).ravel(), method='average')


def pearson(a, b):
    """Pearson r of two 1-D arrays (float64); 0 when either is constant."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if denom == 0 or not np.isfinite(denom):
        return 0.0
    return float(np.dot(a, b) / denom)


def spearman(a, b):
    """Spearman rho of two activation arrays (flattened), ties averaged; 0 if either is constant."""
    return pearson(rank_average(a), rank_average(b))


SNR_DB_2019 = '10*log10(sum(a^2)/sum((a-b)^2)) [power ratio; a natural, b the other]'
SNR_DB_2023 = ('10*log10(||a||_2/||a-b||_2) [ratio of norms, Feather 2023 distance_measures.'
               'compute_snr_db; a natural, b the other]')


def snr_db_2023(signal, other):
    """dB SNR as the 2023 code defines it: ``10 log10(||signal|| / ||signal - other||)`` (float).

    Half of the usual power SNR. ``inf`` when the two are equal, ``-inf`` when
    ``signal`` is all zeros.
    """
    a = np.asarray(signal, np.float64).ravel()
    b = np.asarray(other, np.float64).ravel()
    norm_signal = math.sqrt(np.dot(a, a))
    norm_noise = math.sqrt(np.dot(a - b, a - b))
    if norm_noise == 0:
        return math.inf
    if norm_signal == 0:
        return -math.inf
    return 10.0 * math.log10(norm_signal / norm_noise)


# The 2023 code maps an ImageNet class to its category through the class's *name*
# (wordnetID_to_human_identifier.txt, last WNID of a name wins): 'Dutch oven' (class 544, the
# pot) resolves to n03259401, a WNID of its oven list. Every other class agrees with the
# Geirhos grouping of imagenet_16class_indices.json (checked class by class).
FORCE_16_EXTRA = {544: 'oven'}


def sixteen_way_2023(logits, logit_offset=0):
    """The 2023 code's 16-category decision per row of ``logits`` (list of category names).

    ``force_16_choice``: go down the ImageNet-1000 classes from the largest logit
    and take the category of the first class that belongs to one of the 16 (not
    Geirhos' mean-probability aggregation of :func:`model_metamers.imagenet.sixteen_class_names`).
    ``logits``: ``[batch, 1000 + logit_offset]``.
    """
    from model_metamers import resources
    member = {}
    for name, indices in resources.imagenet_16class_indices().items():
        for i in indices:
            member[int(i)] = name
    member.update(FORCE_16_EXTRA)
    z = np.asarray(logits, np.float64)
    z = z.reshape(-1, z.shape[-1])[:, logit_offset:]
    out = []
    for row in z:
        ranked = np.argsort(-row, kind='stable')
        out.append(next(member[int(i)] for i in ranked if int(i) in member))
    return out


def _sixteen_way_applies(network, logits):
    """Whether ``network``'s logits are ImageNet-1000 (plus its offset): the 16-way task applies."""
    offset = int(network.info.get('logit_offset', 0))
    return network.modality == 'image' and np.shape(logits)[-1] == 1000 + offset


def same_class(network, natural_logits, metamer_logits):
    """Per-stimulus ``(same, natural_class, metamer_class)``.

    Classification networks compare argmax indices. A network may define its own
    criterion in ``network.info['same_class']`` (e.g. DeepSpeech: the same greedy
    CTC transcript), a callable ``(natural_logits, metamer_logits) -> (same, nat, met)``
    on one stimulus. Networks without classes (``info['has_classes'] is False``)
    give ``(None, None, None)``.
    """
    custom = network.info.get('same_class')
    results = []
    for nat, met in zip(natural_logits, metamer_logits):
        if custom is not None:
            results.append(custom(nat, met))
        elif network.info.get('has_classes', True) is False:
            results.append((None, None, None))
        else:
            n, m = int(np.argmax(nat)), int(np.argmax(met))
            results.append((n == m, n, m))
    return results


def load_null(path, measures=False):
    """``{layer: spearman rho array}`` from a null-distribution file.

    ``measures=True`` (the 2023 criterion): ``{layer: {'spearman', 'pearson',
    'snr_db_2023'}}`` instead, from an HDF5 null; see :func:`load_null_measures`.

    Either HDF5 with one group per layer holding a dataset ``spearman`` (and
    optionally ``pearson`` and ``snr_db``), as written by
    ``model_metamers.null_distribution``, or a pickle of the original release
    (``*_null_dist_spearman_r.pckl``), read as data only and with its layer
    names mapped to ours (:mod:`model_metamers.published_nulls`).
    """
    if measures:
        return load_null_measures(path)
    if safe_pickle.is_pickle(path):
        return published_nulls.read(path)
    out = {}
    try:
        f = h5py.File(path, 'r')
    except OSError as exc:
        raise ValueError('cannot read the null distribution %s (%s); give a file written by python -m '
                         'model_metamers.null_distribution' % (path, exc)) from None
    with f:
        for layer in f:
            if isinstance(f[layer], h5py.Group) and 'spearman' in f[layer]:
                out[key_of_h5_name(layer)] = f[layer]['spearman'][()]
    if not out:
        raise ValueError('%s holds no null distribution (no <layer>/spearman datasets)' % path)
    return out


def load_null_measures(path):
    """``{layer: {'spearman', 'pearson', 'snr_db_2023'}}`` (float64 arrays) from an HDF5 null.

    ``snr_db_2023`` is the file's ``snr_db_2023`` dataset, or half its ``snr_db``
    (10 log10 of the power ratio) in files written before it was stored.
    Published pickles hold Spearman rho only and are refused.
    """
    if safe_pickle.is_pickle(path):
        raise ValueError('%s is a published null with Spearman rho only; the 2023 criterion also '
                         'needs Pearson r and dB SNR: compute a null with python -m '
                         'model_metamers.null_distribution, or pass --null_distribution=none' % path)
    try:
        f = h5py.File(path, 'r')
    except OSError as exc:
        raise ValueError('cannot read the null distribution %s (%s); give a file written by python -m '
                         'model_metamers.null_distribution' % (path, exc)) from None
    out = {}
    with f:
        for layer in f:
            g = f[layer]
            if not (isinstance(g, h5py.Group) and 'spearman' in g):
                continue
            if 'pearson' not in g or not ('snr_db' in g or 'snr_db_2023' in g):
                raise ValueError('%s has Spearman rho only at %s; the 2023 criterion also needs '
                                 'Pearson r and dB SNR: compute the null again with python -m '
                                 'model_metamers.null_distribution' % (path, layer))
            snr = (g['snr_db_2023'][()].astype(np.float64) if 'snr_db_2023' in g
                   else g['snr_db'][()].astype(np.float64) / 2.0)
            out[key_of_h5_name(layer)] = {'spearman': g['spearman'][()].astype(np.float64),
                          'pearson': g['pearson'][()].astype(np.float64), 'snr_db_2023': snr}
    if not out:
        raise ValueError('%s holds no null distribution (no <layer>/spearman datasets)' % path)
    return out


@dataclasses.dataclass
class Validation:
    """Validation of one metamer.

    Attributes:
      layer: matched layer.
      spearman_matched: rho at the matched layer.
      spearman_layers: ``{layer: rho}`` at every measured layer (metamer layers and logits).
      same_class: predicted classes agree (None when the network has no classes).
      natural_class, metamer_class: predicted class indices (or transcripts).
      null_max: largest null rho at the matched layer (nan without a null).
      passed: the paper's criterion: same class and rho above ``null_max``;
        without a null only the class criterion can be checked, and
        ``criterion`` says so.
    """

    layer: str
    spearman_matched: float
    spearman_layers: dict
    same_class: object
    natural_class: object
    metamer_class: object
    null_max: float
    passed: bool
    criterion: str
    # The 2023 criterion's other measures and thresholds (procedure 'feather2023' only).
    procedure: str = 'feather2019'
    pearson_matched: float = math.nan
    snr_db_matched: float = math.nan
    null_max_pearson: float = math.nan
    null_max_snr_db: float = math.nan
    class_task: str = ''

    def as_attrs(self):
        attrs = {'spearman_matched': self.spearman_matched, 'same_class': self.same_class,
                 'natural_class': self.natural_class, 'metamer_class': self.metamer_class,
                 'null_max': self.null_max, 'passed': self.passed, 'criterion': self.criterion}
        if self.procedure == 'feather2023':
            attrs.update(validation_procedure=self.procedure, pearson_matched=self.pearson_matched,
                         snr_db_matched=self.snr_db_matched, null_max_spearman=self.null_max,
                         null_max_pearson=self.null_max_pearson,
                         null_max_snr_db=self.null_max_snr_db, snr_db_definition=SNR_DB_2023,
                         class_task=self.class_task)
        return attrs


def null_threshold(null, network, layer):
    """The largest null rho for ``layer`` (a metamer passes above it); NaN without a null."""
    if null is None:
        return np.nan
    values = _null_at(null, network, layer)
    return float(np.max(values['spearman'] if isinstance(values, dict) else values))


def _null_at(null, network, layer):
    key = network.resolve(layer) if network.resolve(layer) in null else layer
    if key not in null:
        raise ValueError('the null distribution has no layer %r (it has %s)' % (layer, ', '.join(null)))
    return null[key]


def passes(same, rho, null_max):
    """The paper's (2019) criterion for one metamer, the one place it is written.

    Args:
      same: the predicted classes agree (True/False), or None for a network without classes.
      rho: Spearman rho between metamer and natural activations at the matched layer.
      null_max: the largest rho of the null distribution at that layer.

    A metamer passes when its class is not different and ``rho`` is strictly above
    ``null_max`` (a tie with the null's maximum does not pass; NaN never passes).
    """
    return bool(same is not False and rho > null_max)


MEASURES_2023 = ('spearman', 'pearson', 'snr_db_2023')


def passes_2023(same, measures, thresholds):
    """The 2023 criterion for one metamer, the one place it is written.

    ``measures`` and ``thresholds``: dicts with Spearman rho, Pearson r and the 2023
    dB SNR (keys :data:`MEASURES_2023`) of the metamer and the null's maxima. It passes
    when its class is not different and each measure is at least its threshold
    (2023's ``print_null_dist``: a metamer overlaps the null only below a maximum).
    """
    return bool(same is not False and all(measures[k] >= thresholds[k] for k in MEASURES_2023))


def validate(network, natural, metamer, layer, null=None, layers=None, from_stage=None,
             criterion='feather2019'):
    """Validate a batch of metamers against their natural stimuli.

    Args:
      network: the :class:`MetamerNetwork` the metamers were made with.
      natural, metamer: ``[batch] + shape`` arrays (stimuli, or the stage
        ``from_stage``, e.g. cochleagrams, for cochleagram-domain metamers).
      layer: the matched layer.
      null: optional ``{layer: rho array}`` (see :func:`load_null`) or a path.
      layers: layers to measure rho at (default: metamer layers + logits).
      criterion: ``'feather2019'`` (the paper) or ``'feather2023'`` (the follow-up:
        Spearman, Pearson and 2023 dB SNR each at least their null maximum; images
        by the 16-category task; ``null`` then as ``load_null(path, measures=True)``).

    Returns:
      A list of :class:`Validation`, one per stimulus.
    """
    if criterion not in ('feather2019', 'feather2023'):
        raise ValueError('unknown validation criterion %r; choose feather2019 or feather2023'
                         % (criterion,))
    if isinstance(null, str):
        null = load_null(null, measures=criterion == 'feather2023')
    network.resolve(layer)  # an unknown layer fails here, with the list of layers
    layers = list(layers) if layers is not None else list(network.metamer_layers)
    if network.logits_stage not in [network.resolve(n) for n in layers]:
        layers.append(network.logits_stage)
    if from_stage is not None:
        start = network.resolve(from_stage)
        # Stages before the optimised representation are not computed from it.
        order = network.stage_names
        layers = [n for n in layers if order.index(network.resolve(n)) >= order.index(start)]
    measured = list(dict.fromkeys(layers + [layer]))
    nat = network.activations(natural, measured, from_stage=from_stage)
    met = network.activations(metamer, measured, from_stage=from_stage)
    nat_logits = (nat[network.logits_stage].numpy() if network.logits_stage in nat
                  else nat[measured[-1]].numpy())
    met_logits = (met[network.logits_stage].numpy() if network.logits_stage in met
                  else met[measured[-1]].numpy())
    if criterion == 'feather2023':
        return _validate_2023(network, natural, nat, met, nat_logits, met_logits, layer, measured, null)
    classes = same_class(network, nat_logits, met_logits)
    null_max = null_threshold(null, network, layer)
    results = []
    for i in range(len(natural)):
        rhos = {n: spearman(nat[n][i].numpy(), met[n][i].numpy()) for n in measured}
        same, nat_class, met_class = classes[i]
        rho = rhos[layer]
        if null is None:
            passed = bool(same) if same is not None else False
            criterion = 'same_class (no null distribution given)'
        else:
            passed = passes(same, rho, null_max)
            criterion = ('same_class and spearman > null max' if same is not None
                         else 'spearman > null max (network has no classes)')
        results.append(Validation(layer=layer, spearman_matched=rho, spearman_layers=rhos,
                                  same_class=same, natural_class=nat_class, metamer_class=met_class,
                                  null_max=null_max, passed=bool(passed), criterion=criterion))
    return results


def _validate_2023(network, natural, nat, met, nat_logits, met_logits, layer, measured, null):
    """:func:`validate` with the 2023 criterion (see the module docstring)."""
    if null is not None:
        values = _null_at(null, network, layer)
        if not isinstance(values, dict):
            raise ValueError('the 2023 criterion needs the null\'s Spearman, Pearson and dB SNR '
                             '(load it with load_null(path, measures=True))')
        thresholds = {k: float(np.max(values[k])) for k in ('spearman', 'pearson', 'snr_db_2023')}
    else:
        thresholds = dict.fromkeys(('spearman', 'pearson', 'snr_db_2023'), math.nan)
    if _sixteen_way_applies(network, nat_logits):
        offset = int(network.info.get('logit_offset', 0))
        nat16 = sixteen_way_2023(nat_logits, offset)
        met16 = sixteen_way_2023(met_logits, offset)
        classes = [(a == b, a, b) for a, b in zip(nat16, met16)]
        task = '16-category (force_16_choice)'
    else:
        classes = same_class(network, nat_logits, met_logits)
        task = 'network classes (argmax or its own criterion)'
    results = []
    for i in range(len(natural)):
        rhos = {n: spearman(nat[n][i].numpy(), met[n][i].numpy()) for n in measured}
        a, b = nat[layer][i].numpy(), met[layer][i].numpy()
        measures = {'spearman': rhos[layer], 'pearson': pearson(a, b), 'snr_db_2023': snr_db_2023(a, b)}
        same, nat_class, met_class = classes[i]
        if null is None:
            passed = bool(same) if same is not None else False
            criterion = 'same_class (no null distribution given)'
        else:
            passed = passes_2023(same, measures, thresholds)
            criterion = ('same class (%s) and spearman, pearson, dB SNR (2023) each >= null max'
                         % task if same is not None
                         else 'spearman, pearson, dB SNR (2023) each >= null max (network has no classes)')
        results.append(Validation(
            layer=layer, spearman_matched=measures['spearman'], spearman_layers=rhos, same_class=same,
            natural_class=nat_class, metamer_class=met_class, null_max=thresholds['spearman'],
            passed=bool(passed), criterion=criterion, procedure='feather2023',
            pearson_matched=measures['pearson'], snr_db_matched=measures['snr_db_2023'],
            null_max_pearson=thresholds['pearson'], null_max_snr_db=thresholds['snr_db_2023'],
            class_task=task))
    return results
