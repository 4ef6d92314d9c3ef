"""Is a synthesised stimulus a metamer? (Feather et al. 2019, §3.1 and Fig. 2)

A metamer counts only if (1) the network's predicted class for it equals that
of the natural stimulus and (2) the Spearman rho between metamer and natural
activations at the matched layer is above the largest value of a null
distribution (rho between activations of random pairs of natural stimuli).
"""

import dataclasses

import h5py
import numpy as np
import scipy.stats

from model_metamers import published_nulls, safe_pickle


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


def load_null(path):
    """``{layer: spearman rho array}`` from a null-distribution file.

    Either HDF5 with one group per layer holding a dataset ``spearman`` (and
    optionally ``pearson`` and ``snr_db``), as written by
    ``model_metamers.null_distribution``, or a pickle of the original release
    (``*_null_dist_spearman_r.pckl``), read as data only and with its layer
    names mapped to ours (:mod:`model_metamers.published_nulls`).
    """
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
                out[layer] = f[layer]['spearman'][()]
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

    def as_attrs(self):
        return {'spearman_matched': self.spearman_matched, 'same_class': self.same_class,
                'natural_class': self.natural_class, 'metamer_class': self.metamer_class,
                'null_max': self.null_max, 'passed': self.passed, 'criterion': self.criterion}


def null_threshold(null, network, layer):
    """The largest null rho for ``layer`` (a metamer passes above it); NaN without a null."""
    if null is None:
        return np.nan
    key = network.resolve(layer) if network.resolve(layer) in null else layer
    if key not in null:
        raise ValueError('the null distribution has no layer %r (it has %s)' % (layer, ', '.join(null)))
    return float(np.max(null[key]))


def validate(network, natural, metamer, layer, null=None, layers=None, from_stage=None):
    """Validate a batch of metamers against their natural stimuli.

    Args:
      network: the :class:`MetamerNetwork` the metamers were made with.
      natural, metamer: ``[batch] + shape`` arrays (stimuli, or the stage
        ``from_stage``, e.g. cochleagrams, for cochleagram-domain metamers).
      layer: the matched layer.
      null: optional ``{layer: rho array}`` (see :func:`load_null`) or a path.
      layers: layers to measure rho at (default: metamer layers + logits).

    Returns:
      A list of :class:`Validation`, one per stimulus.
    """
    if isinstance(null, str):
        null = load_null(null)
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
    classes = same_class(network, nat[network.logits_stage].numpy()
                         if network.logits_stage in nat else nat[measured[-1]].numpy(),
                         met[network.logits_stage].numpy()
                         if network.logits_stage in met else met[measured[-1]].numpy())
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
            passed = (same is not False) and rho > null_max
            criterion = ('same_class and spearman > null max' if same is not None
                         else 'spearman > null max (network has no classes)')
        results.append(Validation(layer=layer, spearman_matched=rho, spearman_layers=rhos,
                                  same_class=same, natural_class=nat_class, metamer_class=met_class,
                                  null_max=null_max, passed=bool(passed), criterion=criterion))
    return results
