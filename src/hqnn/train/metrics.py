"""Classification metrics of one pass over a split, and which of two scores is better."""

from __future__ import annotations

import numpy as np

__all__ = ["METRIC_NAMES", "classification_metrics", "is_better"]

METRIC_NAMES = ("loss", "accuracy", "precision", "recall", "f1")


def classification_metrics(labels, predictions, loss: float) -> dict[str, float]:
    """Loss, accuracy and macro precision/recall/F1 (scikit-learn, over the classes present in
    ``labels`` or ``predictions``; a class never predicted scores 0, as in the CIFAR-100 recipe).

    Args:
        labels: (N,) true labels.
        predictions: (N,) predicted labels.
        loss: mean loss over the N items.

    Returns:
        ``{"loss", "accuracy", "precision", "recall", "f1"}`` as floats.

    Example:
        >>> classification_metrics([0, 1, 1], [0, 1, 0], 0.5)["accuracy"]
        0.6666666666666666
    """
    from sklearn.metrics import precision_recall_fscore_support

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predictions, average="macro", zero_division=0)
    return {
        "loss": float(loss),
        "accuracy": float(np.mean(labels == predictions)) if labels.size else 0.0,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def is_better(metric: str, score: float, best: float | None) -> bool:
    """Whether ``score`` beats ``best`` for ``metric`` (lower is better only for ``loss``)."""
    if best is None:
        return True
    return score < best if metric == "loss" else score > best
