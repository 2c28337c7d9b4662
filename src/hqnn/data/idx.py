"""MNIST and Fashion-MNIST from the original IDX files, gzip-compressed or not.

IDX layout (LeCun et al.): two zero bytes, a type code (0x08 = uint8), the number of dimensions,
then each dimension as a big-endian int32, then the values in C order. Both data sets use the same
four file names: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
and ``t10k-labels-idx1-ubyte``, each optionally with ``.gz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hqnn.data._files import find_file, read_bytes, resolve_root
from hqnn.data.dataset import ImageDataset
from hqnn.exceptions import DataError

__all__ = ["read_idx", "load_mnist", "load_fashion_mnist", "MNIST_CLASSES", "FASHION_MNIST_CLASSES"]

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read one IDX file (raw or ``.gz``) and check its header against its size.

    Args:
        path: the file.
        ndim: the number of dimensions expected (3 for images, 1 for labels).

    Returns:
        The array, shape given by the header, dtype from the type code (native byte order).

    Raises:
        DataError: bad magic number, unexpected number of dimensions, or a byte count that does
            not match the header (truncated or padded file).
    """
    data = read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(
            f"{path}: not an IDX file (magic number must be 00 00 <type> <ndim> with type in "
            f"{sorted(_IDX_TYPES)}; got {data[:4].hex(' ') or 'an empty file'})"
        )
    if data[3] != ndim:
        raise DataError(f"{path}: expected an IDX file with {ndim} dimensions; the header says {data[3]}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{path}: header says shape {dims} ({expected} bytes in all) but the file has "
            f"{len(data)} bytes ({'truncated' if len(data) < expected else 'trailing data'})"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _load_idx_pair(name: str, path, split: str, classes: tuple[str, ...]) -> ImageDataset:
    """Load the images and labels of one split of an MNIST-layout data set."""
    if split not in _SPLIT_PREFIX:
        raise DataError(f"{name}: split must be one of {sorted(_SPLIT_PREFIX)}; got {split!r}")
    root = resolve_root(path, name, "a folder holding train-images-idx3-ubyte[.gz] and the other IDX files")
    prefix = _SPLIT_PREFIX[split]
    image_file = find_file(root, (f"{prefix}-images-idx3-ubyte", f"{prefix}-images-idx3-ubyte.gz"))
    label_file = find_file(root, (f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels-idx1-ubyte.gz"))
    images = read_idx(image_file, ndim=3)  # (N, H, W)
    labels = read_idx(label_file, ndim=1)  # (N,)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DataError(f"{image_file}, {label_file}: expected uint8 IDX files; got {images.dtype} and {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{image_file} holds {images.shape[0]} images but {label_file} holds {labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= len(classes):
        raise DataError(f"{label_file}: labels must lie in [0, {len(classes) - 1}]; found {int(labels.max())}")
    return ImageDataset(
        torch.from_numpy(images).unsqueeze(1),  # (N, 1, 28, 28) uint8
        torch.from_numpy(labels.astype(np.int64)),
        classes,
        name=name,
        split=split,
        source=str(root),
    )


def load_mnist(path=None, split: str = "train") -> ImageDataset:
    """MNIST digits from the IDX files in the folder ``path``.

    Args:
        path: folder holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
            ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).

    Returns:
        ImageDataset with uint8 images (N, 1, 28, 28) and labels 0..9.

    Raises:
        DataError: a file is missing, truncated, corrupt, or inconsistent with its partner.
    """
    return _load_idx_pair("mnist", path, split, MNIST_CLASSES)


def load_fashion_mnist(path=None, split: str = "train") -> ImageDataset:
    """Fashion-MNIST from the IDX files in the folder ``path`` (same layout as :func:`load_mnist`).

    Args:
        path: folder holding the four Fashion-MNIST IDX files (raw or ``.gz``).
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).

    Returns:
        ImageDataset with uint8 images (N, 1, 28, 28) and labels 0..9.

    Raises:
        DataError: a file is missing, truncated, corrupt, or inconsistent with its partner.
    """
    return _load_idx_pair("fashion_mnist", path, split, FASHION_MNIST_CLASSES)
