"""CIFAR-10 and CIFAR-100 from the original "python version" pickle batches.

CIFAR-10 (``cifar-10-batches-py/``): ``data_batch_1`` .. ``data_batch_5`` (train, 50,000) and
``test_batch`` (10,000), each a dict with ``data`` (N, 3072) uint8 (the R, G, B planes of a 32x32
image, row-major) and ``labels``; ``batches.meta`` holds ``label_names``.
CIFAR-100 (``cifar-100-python/``): ``train`` (50,000) and ``test`` (10,000) with ``fine_labels``
(100 classes) and ``coarse_labels`` (20 superclasses); ``meta`` holds ``fine_label_names`` and
``coarse_label_names``. The batches are pickles, read with the restricted unpickler of
:mod:`hqnn.data._pickle` (only numpy types are resolved); load files from a trusted source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hqnn.data._files import find_file, read_bytes, resolve_root
from hqnn.data._pickle import load_pickle
from hqnn.data.dataset import ImageDataset
from hqnn.exceptions import DataError

__all__ = ["load_cifar10", "load_cifar100", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_CIFAR10_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_CIFAR100_LABEL_KEYS = {"fine": ("fine_labels", "fine_label_names", 100),
                        "coarse": ("coarse_labels", "coarse_label_names", 20)}


def _batch_dir(path, dataset: str, folder: str) -> Path:
    """The folder holding the batches: ``path`` itself or ``path/folder``."""
    root = resolve_root(path, dataset, f"the folder {folder}/ or its parent")
    return root / folder if (root / folder).is_dir() else root


def _field(batch, key: str, source: Path):
    """``batch[key]`` for a dict with bytes (Python 2 pickle read as bytes) or str keys."""
    if not isinstance(batch, dict):
        raise DataError(f"{source}: expected a pickled dict (a CIFAR batch); got {type(batch).__name__}")
    for candidate in (key, key.encode()):
        if candidate in batch:
            return batch[candidate]
    raise DataError(f"{source}: the batch has no {key!r} entry (keys: {sorted(map(str, batch))})")


def _read_batch(source: Path, label_key: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one batch file, validated."""
    batch = load_pickle(read_bytes(source), source)
    data = np.asarray(_field(batch, "data", source))
    labels = np.asarray(_field(batch, label_key, source))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{source}: 'data' must be a (N, 3072) uint8 array; got {data.dtype} {data.shape}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{source}: {label_key!r} must hold {data.shape[0]} integers; got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{source}: {label_key!r} must lie in [0, {n_classes - 1}]; found {labels.min()}..{labels.max()}"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _class_names(meta_file: Path | None, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Class names from the meta pickle, or ``default`` when there is no meta file."""
    if meta_file is None:
        return default
    names = _field(load_pickle(read_bytes(meta_file), meta_file), key, meta_file)
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    if len(names) != len(default):
        raise DataError(f"{meta_file}: {key!r} must list {len(default)} names; got {len(names)}")
    return names


def _assemble(name: str, split: str, source: Path, parts, classes) -> ImageDataset:
    images = np.concatenate([images for images, _ in parts])  # (N, 3, 32, 32)
    labels = np.concatenate([labels for _, labels in parts])  # (N,)
    return ImageDataset(
        torch.from_numpy(images), torch.from_numpy(labels), classes, name=name, split=split, source=str(source)
    )


def _check_split(name: str, split: str) -> None:
    if split not in ("train", "test"):
        raise DataError(f"{name}: split must be 'train' or 'test'; got {split!r}")


def load_cifar10(path=None, split: str = "train") -> ImageDataset:
    """CIFAR-10 from ``cifar-10-batches-py/``.

    Args:
        path: the folder ``cifar-10-batches-py`` or its parent.
        split: ``"train"`` (data_batch_1..5, 50,000 images) or ``"test"`` (test_batch, 10,000).

    Returns:
        ImageDataset with uint8 images (N, 3, 32, 32) and labels 0..9.

    Raises:
        DataError: a batch is missing, not a CIFAR pickle, or holds bad shapes or labels.
    """
    _check_split("cifar10", split)
    folder = _batch_dir(path, "cifar10", "cifar-10-batches-py")
    parts = [_read_batch(find_file(folder, (f,)), "labels", 10) for f in _CIFAR10_FILES[split]]
    meta = folder / "batches.meta"
    classes = _class_names(meta if meta.is_file() else None, "label_names", CIFAR10_CLASSES)
    return _assemble("cifar10", split, folder, parts, classes)


def load_cifar100(path=None, split: str = "train", label_mode: str = "fine") -> ImageDataset:
    """CIFAR-100 from ``cifar-100-python/``, with fine (100) or coarse (20) labels.

    Args:
        path: the folder ``cifar-100-python`` or its parent.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Returns:
        ImageDataset with uint8 images (N, 3, 32, 32); class names from ``meta``.

    Raises:
        DataError: a file is missing, not a CIFAR pickle, or holds bad shapes or labels.
    """
    _check_split("cifar100", split)
    if label_mode not in _CIFAR100_LABEL_KEYS:
        raise DataError(f"cifar100: label_mode must be 'fine' or 'coarse'; got {label_mode!r}")
    label_key, names_key, n_classes = _CIFAR100_LABEL_KEYS[label_mode]
    folder = _batch_dir(path, "cifar100", "cifar-100-python")
    parts = [_read_batch(find_file(folder, (split,)), label_key, n_classes)]
    meta = find_file(folder, ("meta",))
    classes = _class_names(meta, names_key, tuple(str(i) for i in range(n_classes)))
    return _assemble(f"cifar100_{label_mode}" if label_mode == "coarse" else "cifar100", split, folder, parts, classes)
