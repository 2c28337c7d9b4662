"""Metrics against scikit-learn computed independently: balanced accuracy, the full test report."""

import json

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

from hqnn.train.metrics import METRIC_NAMES, classification_metrics, full_report


def _sample(seed=0, n=200, n_classes=4):
    rng = np.random.default_rng(seed)
    labels = rng.choice(n_classes, size=n, p=[0.6, 0.2, 0.15, 0.05][:n_classes] if n_classes == 4 else None)
    logits = rng.normal(size=(n, n_classes)) + 1.5 * np.eye(n_classes)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities.argmax(axis=1), probabilities


def test_balanced_accuracy_matches_sklearn_and_differs_from_accuracy():
    labels, predictions, _ = _sample()
    metrics = classification_metrics(labels, predictions, 0.25)
    assert set(metrics) == set(METRIC_NAMES)
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predictions), abs=1e-12)
    # the majority-class predictor: accuracy 0.6 on this skewed sample, balanced accuracy 1/4
    majority = np.zeros_like(labels)
    skewed = classification_metrics(labels, majority, 0.0)
    assert skewed["accuracy"] == pytest.approx(np.mean(labels == 0))
    assert skewed["balanced_accuracy"] == pytest.approx(0.25)


def test_classification_metrics_of_an_empty_split_are_zero():
    assert classification_metrics([], [], 0.0) == {name: 0.0 for name in METRIC_NAMES}


def test_full_report_matches_sklearn():
    labels, predictions, probabilities = _sample(seed=1)
    names = ["none", "edge", "ring", "scratch"]
    report = full_report(labels, predictions, probabilities, names)
    assert report["confusion"] == confusion_matrix(labels, predictions).tolist()
    assert report["roc_auc_ovr"] == pytest.approx(roc_auc_score(labels, probabilities, multi_class="ovr"), abs=1e-12)
    assert report["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predictions))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predictions, zero_division=0)
    for k, row in enumerate(report["per_class"]):
        assert row["class"] == names[k] and row["support"] == support[k]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[k], recall[k], f1[k]))
    macro = precision_recall_fscore_support(labels, predictions, average="macro", zero_division=0)
    assert (report["precision"], report["recall"], report["f1"]) == pytest.approx(macro[:3])
    json.dumps(report)  # plain JSON types throughout


def test_full_report_binary_auc_and_missing_classes():
    labels = np.array([0, 0, 1, 1, 0])
    probabilities = np.array([[0.9, 0.1, 0.0], [0.4, 0.6, 0.0], [0.35, 0.65, 0.0], [0.2, 0.8, 0.0], [0.7, 0.2, 0.1]])
    report = full_report(labels, probabilities.argmax(axis=1), probabilities)
    assert report["roc_auc_ovr"] == pytest.approx(roc_auc_score(labels, probabilities[:, 1]))
    # class 2 never occurs: its row of the confusion matrix is zeros, its support 0
    assert len(report["confusion"]) == 3 and report["confusion"][2] == [0, 0, 0]
    assert report["per_class"][2] == {"class": "2", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_full_report_auc_is_none_when_not_computable():
    assert full_report([1, 1, 1], [1, 0, 1], np.full((3, 2), 0.5))["roc_auc_ovr"] is None  # one class only
    report = full_report([0, 1, 1], [0, 1, 0], class_names=["a", "b"])
    assert report["roc_auc_ovr"] is None and report["confusion"] == [[1, 0], [1, 1]]
