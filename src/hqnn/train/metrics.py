"""Classification metrics of one pass over a split, the full report of a test pass, and which of
two scores is better."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["METRIC_NAMES", "classification_metrics", "full_report", "is_better"]

METRIC_NAMES = ("loss", "accuracy", "balanced_accuracy", "precision", "recall", "f1")


def classification_metrics(labels, predictions, loss: float) -> dict[str, float]:
    """Loss, accuracy, balanced accuracy and macro precision/recall/F1 (scikit-learn, over the
    classes present in ``labels`` or ``predictions``; a class never predicted scores 0, as in the
    CIFAR-100 recipe).

    Balanced accuracy is the mean recall over the classes present in ``labels`` (scikit-learn's
    ``balanced_accuracy_score``): on a skewed split such as WM-811K it does not reward predicting
    the majority class.

    Args:
        labels: (N,) true labels.
        predictions: (N,) predicted labels.
        loss: mean loss over the N items.

    Returns:
        ``{"loss", "accuracy", "balanced_accuracy", "precision", "recall", "f1"}`` as floats
        (0.0 for the scores of an empty split).

    Example:
        >>> classification_metrics([0, 1, 1], [0, 1, 0], 0.5)["balanced_accuracy"]
        0.75
    """
    import warnings

    from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if not labels.size:
        return {"loss": float(loss), **{name: 0.0 for name in METRIC_NAMES[1:]}}
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predictions, average="macro", zero_division=0)
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": the score is still defined
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(labels, predictions)
    return {
        "loss": float(loss),
        "accuracy": float(np.mean(labels == predictions)),
        "balanced_accuracy": float(balanced),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def full_report(labels, predictions, probabilities=None, class_names=None) -> dict[str, Any]:
    """Everything a test pass can say: the headline scores, per-class scores, the confusion matrix
    and the one-vs-rest ROC AUC, as plain JSON types.

    Args:
        labels: (N,) true labels in ``0 .. n_classes-1``.
        predictions: (N,) predicted labels.
        probabilities: (N, n_classes) class probabilities (softmax of the logits), or None.
        class_names: the class names; their number is ``n_classes`` (else ``probabilities.shape[1]``,
            else one more than the largest label seen).

    Returns:
        ``{"accuracy", "balanced_accuracy", "precision", "recall", "f1"}`` (macro, as
        :func:`classification_metrics`), ``"per_class"``: one ``{"class", "precision", "recall",
        "f1", "support"}`` per class, ``"confusion"``: n_classes lists of n_classes counts (row =
        true class, column = predicted), ``"roc_auc_ovr"``: macro one-vs-rest ROC AUC over the
        classes present in ``labels``, or None when it cannot be computed (no probabilities, fewer
        than two classes present).

    Example:
        >>> full_report([0, 1, 1], [0, 1, 0], class_names=["a", "b"])["confusion"]
        [[1, 0], [1, 1]]
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if class_names is not None:
        n_classes = len(class_names)
    elif probabilities is not None:
        n_classes = int(np.asarray(probabilities).shape[1])
    else:
        n_classes = int(max(labels.max(initial=-1), predictions.max(initial=-1))) + 1
    names = [str(c) for c in class_names] if class_names is not None else [str(k) for k in range(n_classes)]
    classes = list(range(n_classes))
    report: dict[str, Any] = {k: v for k, v in classification_metrics(labels, predictions, 0.0).items() if k != "loss"}
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, average=None, zero_division=0
    )
    report["per_class"] = [
        {"class": names[k], "precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
         "support": int(support[k])}
        for k in classes
    ]
    report["confusion"] = confusion_matrix(labels, predictions, labels=classes).tolist() if labels.size else [
        [0] * n_classes for _ in classes
    ]
    report["roc_auc_ovr"] = None
    present = np.unique(labels)
    if probabilities is not None and present.size >= 2:
        scores = np.asarray(probabilities, dtype=np.float64)
        if present.size == 2:  # binary: sklearn wants the positive class's score
            auc = roc_auc_score(labels == present[1], scores[:, present[1]])
        else:  # macro over the classes present, each scored one-vs-rest on its own column
            auc = np.mean([roc_auc_score(labels == k, scores[:, k]) for k in present])
        report["roc_auc_ovr"] = float(auc)
    return report


def is_better(metric: str, score: float, best: float | None) -> bool:
    """Whether ``score`` beats ``best`` for ``metric`` (lower is better only for ``loss``)."""
    if best is None:
        return True
    return score < best if metric == "loss" else score > best
