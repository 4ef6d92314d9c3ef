"""Evaluation metrics on numpy arrays: accuracy and mean ROC AUC."""

import numpy as np
from scipy.stats import rankdata


def accuracy(labels, logits):
    """Fraction (0-1) of clips whose argmax logit is the label; labels int ``[n]``, logits ``[n, C]``."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return float('nan')
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def roc_auc(positive, scores):
    """Area under the ROC curve of one class: Mann-Whitney U / (n_pos * n_neg), ties count half.

    ``positive`` bool ``[n]``, ``scores`` float ``[n]``. NaN when the class has
    no positive or no negative clip.
    """
    positive = np.asarray(positive, bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def mean_auc(targets, scores):
    """Mean ROC AUC over the classes that have both positive and negative clips.

    ``targets`` multi-hot ``[n, C]``, ``scores`` ``[n, C]`` (logits or
    probabilities: AUC depends only on the order). NaN if no class qualifies.
    """
    targets = np.asarray(targets) > 0.5
    aucs = [roc_auc(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float('nan')


def task_metric(task, targets, logits):
    """The task's metric (accuracy for softmax tasks, mean AUC for sigmoid tasks)."""
    return accuracy(targets, logits) if task.kind == 'softmax' else mean_auc(targets, logits)
