"""Small image data sets: scikit-learn's bundled digits, and an image folder (one folder per class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hqnn.data._files import resolve_root
from hqnn.data.dataset import ImageDataset
from hqnn.exceptions import DataError, require

__all__ = ["load_digits", "load_image_folder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def load_digits(path=None, split: str = "all") -> ImageDataset:
    """scikit-learn's bundled handwritten digits: 1,797 images of 8x8, no download needed.

    Args:
        path: unused (the data ship with scikit-learn); accepted for a uniform signature.
        split: only ``"all"``; make train/validation splits with :mod:`hqnn.data.splits`.

    Returns:
        ImageDataset with float32 images (1797, 1, 8, 8) in [0, 1] (stored 0..16, divided by 16)
        and labels 0..9.

    Raises:
        DataError: ``split`` is not ``"all"``.
    """
    if split != "all":
        raise DataError(f"digits has one split, 'all'; got {split!r} (use hqnn.data.splits to split it)")
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return ImageDataset(images, labels, tuple(str(d) for d in range(10)), name="digits", split="all", source="sklearn")


def load_image_folder(path=None, split: str = "all", mode: str = "RGB",
                      size: tuple[int, int] | None = None) -> ImageDataset:
    """Images in class folders (``root/<class>/*.png|jpg|jpeg``); classes in sorted folder order.

    Args:
        path: the root folder. With ``split`` other than ``"all"``, ``root/<split>`` is read instead
            (the common ``train/`` and ``test/`` layout).
        split: ``"all"`` or the name of a sub-folder of ``path``.
        mode: PIL mode to convert every image to (``"RGB"`` or ``"L"``).
        size: (H, W) to resize every image to (bilinear); without it all images must share a size.

    Returns:
        ImageDataset with uint8 images (N, C, H, W).

    Raises:
        MissingDependencyError: Pillow is not installed.
        DataError: no class folders or no images, an unreadable image, or mixed sizes without ``size``.
    """
    image_module = require("PIL.Image", "plot")
    root = resolve_root(path, "image_folder", "a folder with one sub-folder of images per class")
    if split != "all":
        root = resolve_root(root / split, "image_folder", f"a sub-folder {split!r} of {root}")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir())
    if not class_dirs:
        raise DataError(f"{root}: no class folders found (expected {root}/<class>/<image>.png)")
    arrays, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        for file in sorted(f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS):
            arrays.append(_read_image(image_module, file, mode, size))
            labels.append(label)
    if not arrays:
        raise DataError(f"{root}: the class folders hold no images with extensions {IMAGE_EXTENSIONS}")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"{root}: images have different sizes {sorted(shapes)[:4]}; pass size=(H, W) to resize them")
    images = torch.from_numpy(np.stack(arrays))  # (N, H, W, C)
    return ImageDataset(
        images.permute(0, 3, 1, 2).contiguous(),  # (N, C, H, W)
        torch.tensor(labels, dtype=torch.int64),
        tuple(d.name for d in class_dirs),
        name="image_folder",
        split=split,
        source=str(root),
    )


def _read_image(image_module, file: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as an (H, W, C) uint8 array."""
    try:
        with image_module.open(file) as image:
            image = image.convert(mode)
            if size is not None:
                image = image.resize((size[1], size[0]), image_module.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise DataError(f"{file}: cannot read the image ({exc})") from exc
    return array[..., None] if array.ndim == 2 else array
