"""The in-memory image dataset every loader returns (the data sets here all fit in memory).

Images are kept as stored (``uint8`` for the file formats, which is 4x smaller than float) and
turned into float in [0, 1] on access; labels are ``int64`` with ``-1`` marking an unlabelled item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from hqnn.exceptions import DataError, ShapeError

__all__ = ["ImageDataset"]


class ImageDataset(torch.utils.data.Dataset):
    """Images (N, C, H, W) with int64 labels, usable directly with a ``DataLoader``.

    Args:
        images: (N, C, H, W) tensor, ``uint8`` (0..255, scaled by 1/255 on access) or floating
            point already in [0, 1].
        labels: (N,) integer tensor; each in [0, len(classes)) or -1 for unlabelled.
        classes: class names, index = label.
        name: dataset name (e.g. ``"mnist"``), used in split files and caches.
        split: which split this is (``"train"``, ``"test"``, ``"all"``, ...).
        source: where the data came from (a path), for messages.
        transform: optional callable applied to one float (C, H, W) image in ``__getitem__``.

    Raises:
        ShapeError: images are not 4-D, or the label count differs from the image count.
        DataError: a label is out of range.

    Example:
        >>> ds = ImageDataset(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1]), ("a", "b"))
        >>> ds[1][0].shape, int(ds[1][1])
        (torch.Size([1, 8, 8]), 1)
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: Sequence[str],
        *,
        name: str = "dataset",
        split: str = "all",
        source: str = "",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        if images.ndim != 4:
            raise ShapeError(f"{name}: images must have shape (N, C, H, W); got {tuple(images.shape)}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ShapeError(
                f"{name}: labels must have shape ({images.shape[0]},) to match the images; "
                f"got {tuple(labels.shape)}"
            )
        labels = labels.to(torch.int64)
        if labels.numel() and (int(labels.min()) < -1 or int(labels.max()) >= len(classes)):
            raise DataError(
                f"{name} ({source or split}): labels must lie in [0, {len(classes) - 1}] (or -1 for "
                f"unlabelled); got values from {int(labels.min())} to {int(labels.max())}"
            )
        self.images = images  # (N, C, H, W)
        self.labels = labels  # (N,)
        self.classes = tuple(classes)
        self.name = name
        self.split = split
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = _to_float(self.images[index])  # (C, H, W)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image_shape={self.image_shape}, n_classes={self.n_classes})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return c, h, w

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def float_images(self) -> torch.Tensor:
        """All images as float32 in [0, 1], shape (N, C, H, W), without the per-item transform."""
        return _to_float(self.images)

    def class_counts(self) -> torch.Tensor:
        """Number of labelled items per class, shape (n_classes,) int64."""
        labelled = self.labels[self.labels >= 0]
        return torch.bincount(labelled, minlength=self.n_classes)

    def subset(self, indices: Sequence[int] | torch.Tensor, split: str | None = None) -> ImageDataset:
        """A new dataset holding the items at ``indices`` (same classes, name and transform).

        Args:
            indices: item indices (any integer sequence or tensor).
            split: name of the new split; defaults to this dataset's split.

        Returns:
            The subset.

        Raises:
            DataError: an index is out of range, or the selection is empty.
        """
        index = torch.as_tensor(indices, dtype=torch.int64)
        if index.numel() == 0:
            raise DataError(f"{self.name}: empty selection from the {self.split!r} split")
        if int(index.min()) < -len(self) or int(index.max()) >= len(self):
            raise DataError(
                f"{self.name}: subset indices must lie in [0, {len(self) - 1}]; "
                f"got {int(index.min())}..{int(index.max())}"
            )
        return ImageDataset(
            self.images[index],
            self.labels[index],
            self.classes,
            name=self.name,
            split=split or self.split,
            source=self.source,
            transform=self.transform,
        )


def _to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 0..1; floating tensors pass through as float32."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0
    return images.to(torch.float32)
