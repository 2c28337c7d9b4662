"""The dataset registry: names, metadata and one ``load_dataset`` entry point.

Loaders that read files take ``path``; when it is None they look under ``$HQNN_DATA/<folder>``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hqnn.data.cifar import CIFAR10_CLASSES, load_cifar10, load_cifar100
from hqnn.data.folder import load_digits, load_image_folder
from hqnn.data.idx import FASHION_MNIST_CLASSES, MNIST_CLASSES, load_fashion_mnist, load_mnist
from hqnn.data.wm811k import WM811K_CLASSES, load_wm811k
from hqnn.exceptions import DataError

__all__ = ["DatasetInfo", "list_datasets", "dataset_info", "load_dataset", "DATA_DIR_ENV"]

DATA_DIR_ENV = "HQNN_DATA"


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset holds.

    Attributes:
        name: registry name.
        loader: function ``(path, split, **kw)`` returning the dataset.
        n_classes: number of classes (None when it depends on the files, as for image folders).
        image_shape: (C, H, W) of one image, or None when sizes vary or depend on the files.
        splits: valid ``split`` values; the first is the default.
        path_hint: what ``path`` must point to.
        folder: sub-folder of ``$HQNN_DATA`` used when no path is given (None: needs no files).
        classes: class names, when fixed.
    """

    name: str
    loader: Callable
    n_classes: int | None
    image_shape: tuple[int, int, int] | None
    splits: tuple[str, ...]
    path_hint: str
    folder: str | None
    classes: tuple[str, ...] | None = None

    @property
    def channels(self) -> int | None:
        return None if self.image_shape is None else self.image_shape[0]


_IDX_HINT = "a folder with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-..."
_REGISTRY = {
    info.name: info
    for info in (
        DatasetInfo("digits", load_digits, 10, (1, 8, 8), ("all",), "nothing (bundled with scikit-learn)", None, MNIST_CLASSES),
        DatasetInfo("mnist", load_mnist, 10, (1, 28, 28), ("train", "test"), _IDX_HINT, "mnist", MNIST_CLASSES),
        DatasetInfo("fashion_mnist", load_fashion_mnist, 10, (1, 28, 28), ("train", "test"), _IDX_HINT, "fashion_mnist", FASHION_MNIST_CLASSES),
        DatasetInfo("cifar10", load_cifar10, 10, (3, 32, 32), ("train", "test"), "cifar-10-batches-py/ or its parent", "cifar10", CIFAR10_CLASSES),
        DatasetInfo("cifar100", load_cifar100, 100, (3, 32, 32), ("train", "test"), "cifar-100-python/ or its parent (label_mode='fine'|'coarse')", "cifar100"),
        DatasetInfo("wm811k", load_wm811k, 9, None, ("all", "train", "test"), "LSWMD.pkl[.xz|.gz|.bz2] or a converted .npz", "wm811k", WM811K_CLASSES),
        DatasetInfo("image_folder", load_image_folder, None, None, ("all",), "a folder with one sub-folder of PNG/JPEG images per class", None),
    )
}


def list_datasets() -> list[str]:
    """Names of the registered datasets, sorted."""
    return sorted(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``.

    Raises:
        DataError: unknown name (the message lists the valid ones).
    """
    if name not in _REGISTRY:
        raise DataError(f"unknown dataset {name!r}; choose one of {list_datasets()}")
    return _REGISTRY[name]


def load_dataset(name: str, path=None, split: str | None = None, **kwargs):
    """Load a registered dataset.

    Args:
        name: a name from :func:`list_datasets`.
        path: where the files are (see ``dataset_info(name).path_hint``); None uses
            ``$HQNN_DATA/<folder>`` when that variable is set.
        split: one of ``dataset_info(name).splits``; None picks the first (``train`` where there
            is one).
        **kwargs: loader options (``label_mode`` for cifar100, ``labelled_only`` for wm811k,
            ``mode``/``size`` for image_folder).

    Returns:
        An :class:`~hqnn.data.ImageDataset` (a :class:`~hqnn.data.WaferMapSet` for ``wm811k``;
        call ``.to_images(size)`` on it).

    Raises:
        DataError: unknown name or split, missing path, or any file problem.

    Example:
        >>> load_dataset("digits").image_shape
        (1, 8, 8)
    """
    info = dataset_info(name)
    split = info.splits[0] if split is None else split
    if split not in info.splits and info.name != "image_folder":
        raise DataError(f"{name}: unknown split {split!r}; choose one of {info.splits}")
    if path is None and info.folder is not None and os.environ.get(DATA_DIR_ENV):
        path = Path(os.environ[DATA_DIR_ENV]) / info.folder
    return info.loader(path, split, **kwargs)
