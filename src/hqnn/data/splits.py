"""Train/validation splits, saved to a file and reused, plus class counts and weights.

Split files are ``.npz`` (no pickle) holding ``train`` and ``val`` index arrays, the dataset name,
its size, the method and the seed; a later run reads the file instead of drawing again, and
refuses a file made for another dataset or size.
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import numpy as np

from hqnn.exceptions import ConfigError, DataError

__all__ = [
    "stratified_split",
    "diana_split",
    "load_or_create_split",
    "class_counts",
    "class_weights",
    "SPLIT_METHODS",
]


def stratified_split(labels, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so each class keeps its share in the validation set.

    Each class contributes ``round(val_fraction * count)`` random members to validation
    (numpy ``default_rng(seed)``); unlabelled items (label -1) go to train.

    Args:
        labels: (N,) integer labels.
        val_fraction: validation share, in (0, 1).
        seed: random seed.

    Returns:
        (train, val): sorted int64 index arrays that partition range(N).

    Raises:
        ConfigError: ``val_fraction`` outside (0, 1).
        DataError: the validation or training part would be empty.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie in (0, 1); got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == label)
        val_parts.append(rng.permutation(members)[: int(round(val_fraction * members.size))])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(labels.size), val)
    if val.size == 0 or train.size == 0:
        raise DataError(
            f"stratified split of {labels.size} items with val_fraction={val_fraction} leaves an empty "
            f"{'validation' if val.size == 0 else 'training'} set"
        )
    return train.astype(np.int64), val.astype(np.int64)


def diana_split(n_items: int = 50_000, n_val: int = 10_000, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """The CIFAR-100 recipe's split: ``random.Random(42).shuffle(list(range(N)))``, first ``n_val`` to val.

    Args:
        n_items: dataset size (50,000 for CIFAR-100 train).
        n_val: validation size (10,000).
        seed: the ``random.Random`` seed (42).

    Returns:
        (train, val): sorted int64 index arrays (40,000 and 10,000 for the defaults).

    Raises:
        ConfigError: ``n_val`` not in [1, n_items).
    """
    if not 0 < n_val < n_items:
        raise ConfigError(f"n_val must lie in [1, {n_items - 1}] for {n_items} items; got {n_val}")
    order = list(range(n_items))
    random.Random(seed).shuffle(order)
    return np.sort(np.array(order[n_val:], dtype=np.int64)), np.sort(np.array(order[:n_val], dtype=np.int64))


SPLIT_METHODS = ("stratified", "diana")


def load_or_create_split(
    path,
    dataset: str,
    labels,
    method: str = "stratified",
    val_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Read the split in ``path`` if it exists, else draw one and write it there.

    Args:
        path: the split file (``.npz``).
        dataset: dataset name stored in (and checked against) the file.
        labels: (N,) labels of the dataset being split.
        method: ``"stratified"`` (uses ``val_fraction`` and ``seed``) or ``"diana"`` (uses
            ``n_val = round(val_fraction * N)`` and ``seed``; 0.2 and 42 reproduce the recipe).
        val_fraction: validation share.
        seed: random seed.

    Returns:
        (train, val) int64 index arrays.

    Raises:
        DataError: an existing file is unreadable, or was made for another dataset or size.
        ConfigError: unknown method.
    """
    path = Path(path)
    n_items = len(labels)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                name, size = str(stored["dataset"]), int(stored["size"])
                train, val = stored["train"], stored["val"]
        except (OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
            raise DataError(f"{path}: not a readable split file ({type(exc).__name__}: {exc})") from exc
        if name != dataset or size != n_items:
            raise DataError(
                f"{path}: split made for dataset {name!r} with {size} items; this dataset is {dataset!r} "
                f"with {n_items} items (delete the file to draw a new split)"
            )
        return train.astype(np.int64), val.astype(np.int64)
    if method == "stratified":
        train, val = stratified_split(labels, val_fraction, seed)
    elif method == "diana":
        train, val = diana_split(n_items, int(round(val_fraction * n_items)), seed)
    else:
        raise ConfigError(f"split method must be one of {SPLIT_METHODS}; got {method!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, train=train, val=val, dataset=np.array(dataset), size=np.array(n_items), method=np.array(method),
             seed=np.array(seed))
    return train, val


def class_counts(labels, n_classes: int) -> np.ndarray:
    """Items per class (labels -1 ignored), shape (n_classes,) int64.

    Raises:
        DataError: a label is >= n_classes or < -1.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < -1 or labels.max() >= n_classes):
        raise DataError(f"labels must lie in [0, {n_classes - 1}] (or -1); found {labels.min()}..{labels.max()}")
    return np.bincount(labels[labels >= 0], minlength=n_classes)


def class_weights(labels, n_classes: int, power: float = 1.0) -> np.ndarray:
    """Inverse-frequency class weights, normalised so the average weight per labelled item is 1.

    ``w_c = N / (K * n_c)`` with N labelled items and K classes present (scikit-learn's
    "balanced"); a class with no items gets weight 0. With ``power`` p the weights are
    ``w_c ∝ n_c ** -p``, normalised the same way (p = 1: "balanced"; p = 0.5: inverse square root,
    milder for a 250:1 imbalance such as WM-811K's). Pass them to ``CrossEntropyLoss(weight=...)``.

    Args:
        labels: (N,) integer labels (-1 ignored).
        n_classes: number of classes.
        power: exponent p of the inverse frequency.

    Returns:
        (n_classes,) float64 weights.

    Raises:
        DataError: no labelled items, or a label out of range.
    """
    counts = class_counts(labels, n_classes)
    if counts.sum() == 0:
        raise DataError("class weights need at least one labelled item; got none")
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts[present].astype(float) ** -power
    return weights * counts.sum() / (weights * counts).sum()
