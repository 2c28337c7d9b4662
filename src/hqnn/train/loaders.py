"""From a :class:`~hqnn.train.config.DataConfig` to train/val/test loaders and batch transforms.

The datasets live in memory, so a batch is gathered by indexing the stored tensors at once (the
loader's sampler yields index lists); images are augmented, resized and normalised per batch by
the kornia pipelines of :mod:`hqnn.data.transforms`. Splits are written to files under
``<out_dir>/splits/`` and reused, so that every run (and both sides of a comparison) with the same
split settings trains and selects on the same items.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hqnn.data import (
    ImageDataset,
    ImagePipeline,
    RandomRot90Flip,
    ResizeTo,
    cached_quantum_descriptors,
    class_weights,
    dataset_info,
    eval_pipeline,
    load_dataset,
    load_or_create_split,
    normalization,
    train_pipeline,
    vec_to_map,
)
from hqnn.data.quantum_features import descriptor_share, join_shares, quantum_cache_file
from hqnn.exceptions import ConfigError, DataError
from hqnn.train.config import DataConfig
from hqnn.train.distributed import all_gather_objects, broadcast_object, context, main_first

__all__ = ["DataBundle", "build_data", "build_transforms", "load_split", "make_loader", "RankBatches",
           "QUANTUM_CHANNEL_MAPS"]

log = logging.getLogger(__name__)

QUANTUM_CHANNEL_MAPS = ("edge", "texture")


@dataclass
class DataBundle:
    """The three splits and how their batches are prepared.

    Attributes:
        train, val, test: the splits.
        n_classes: number of classes.
        in_chans: channels the model receives (image channels + quantum channels).
        train_transform, eval_transform: :class:`ImagePipeline` s for a batch ``(images, extras)``.
        class_weights: (n_classes,) loss weights, or None.
        extras: per split, (N, 2, n_qubits) quantum descriptors for ``data.quantum_channels``, or None.
        image_size: side length of the prepared batches.
    """

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    n_classes: int
    in_chans: int
    train_transform: ImagePipeline
    eval_transform: ImagePipeline
    class_weights: torch.Tensor | None
    extras: dict[str, torch.Tensor] | None
    image_size: int

    def prepare(self, split: str, images: torch.Tensor, indices: torch.Tensor, training: bool) -> torch.Tensor:
        """Augment/resize/normalise one batch of float images (B, C, H, W) -> (B, in_chans, S, S)."""
        transform = self.train_transform if training else self.eval_transform
        extra = None
        if self.extras is not None:
            descriptors = self.extras[split][indices]  # (B, 2, n_qubits)
            extra = torch.cat([vec_to_map(descriptors[:, k], (self.image_size,) * 2) for k in range(2)], dim=1)
        return transform(images, None if extra is None else extra.to(images.device))


class _BatchView(torch.utils.data.Dataset):
    """Indexing with a list of indices returns a whole batch: (float images, labels, indices)."""

    def __init__(self, dataset: ImageDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.int64)
        if not len(index):  # a rank's empty share of a last batch smaller than the world (RankBatches)
            return torch.zeros(0, *self.dataset.image_shape), self.dataset.labels[:0], index
        batch = self.dataset.subset(index)
        return batch.float_images(), batch.labels, index  # (B, C, H, W), (B,), (B,)


class RankBatches:
    """One rank's share of every global batch: items ``rank, rank + W, ...`` of each batch that
    ``batches`` yields (W = ``world_size``), so that the W ranks together see exactly the batches
    one process sees, in the same order.

    The global order comes from one shuffling generator seeded alike on every rank (the trainer's,
    saved in its checkpoints), so each epoch is reshuffled the same way everywhere. This differs
    from :class:`torch.utils.data.DistributedSampler` on purpose: that sampler pads the data to a
    multiple of W with repeated items and orders it differently from one process; this one never
    repeats an item, so a run on W ranks takes the one-process run's optimiser steps. A rank may
    get an empty share of a last batch smaller than W.
    """

    def __init__(self, batches: torch.utils.data.BatchSampler, rank: int, world_size: int):
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield batch[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self.batches)


def make_loader(
    dataset: ImageDataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> torch.utils.data.DataLoader:
    """A single-process loader of whole batches; shuffled by ``generator`` (seeded by the trainer).

    With ``world_size`` > 1 it yields rank ``rank``'s part: for a shuffled (training) loader its
    share of each global batch of ``batch_size`` (:class:`RankBatches`); for an evaluation loader
    items ``rank, rank + W, ...`` of the split in batches of ``batch_size`` (see
    :func:`hqnn.train.distributed.gather_split`). The indices yielded are always the split's own.
    """
    batches: torch.utils.data.BatchSampler | RankBatches
    if shuffle:
        order = torch.utils.data.RandomSampler(dataset, generator=generator)
        batches = torch.utils.data.BatchSampler(order, batch_size, drop_last=False)
        if world_size > 1:
            batches = RankBatches(batches, rank, world_size)
    else:
        batches = torch.utils.data.BatchSampler(range(rank, len(dataset), world_size), batch_size, drop_last=False)
    return torch.utils.data.DataLoader(_BatchView(dataset), sampler=batches, batch_size=None, num_workers=0)


def load_split(config: DataConfig, split: str) -> ImageDataset:
    """One split of ``config``'s dataset as images (wafer maps drawn at ``image_size`` with ``wafer_encoding``).

    Raises:
        DataError: unknown dataset or split, missing or bad files.
    """
    if config.name == "wm811k":
        wafers = load_dataset("wm811k", config.path, split)
        return wafers.to_images(config.image_size or 32, config.wafer_encoding, config.wafer_resize)
    return load_dataset(config.name, config.path, split)


def _split_file(split_dir: Path, config: DataConfig, stage: str, fraction: float, method: str) -> Path:
    source = config.train_split or dataset_info(config.name).splits[0]
    return split_dir / f"{config.name}_{source}_{stage}_{method}_{fraction:g}_seed{config.split_seed}.npz"


def _split(
    dataset: ImageDataset, path: Path, key: str, method: str, fraction: float, seed: int, names: tuple[str, str]
):
    kept, held_out = load_or_create_split(path, key, dataset.labels.numpy(), method, fraction, seed)
    return dataset.subset(torch.as_tensor(kept), names[0]), dataset.subset(torch.as_tensor(held_out), names[1])


def _limit(dataset: ImageDataset, limit: int | None) -> ImageDataset:
    return dataset if limit is None or len(dataset) <= limit else dataset.subset(range(limit))


def build_transforms(config: DataConfig, image_size: int) -> tuple[ImagePipeline, ImagePipeline]:
    """The (train, eval) pipelines of ``config``: ``augment`` and ``normalize`` at ``image_size``."""
    if config.augment == "recipe":
        return train_pipeline(image_size, config.normalize), eval_pipeline(image_size, config.normalize)
    import kornia.augmentation as K

    resize = ResizeTo(image_size)
    augment: dict[str, list[nn.Module]] = {
        "none": [], "flip": [K.RandomHorizontalFlip(p=0.5)], "rot90flip": [RandomRot90Flip()]}
    train = ImagePipeline(nn.Sequential(resize, *augment[config.augment]), normalization(config.normalize))
    return train, ImagePipeline(resize, normalization(config.normalize))


def _quantum_channel(
    images: torch.Tensor, cache_dir: Path, dataset: str, split: str, kind: str, progress: bool
) -> np.ndarray:
    """:func:`cached_quantum_descriptors`; under torchrun rank 0 alone reads the cache (and sends
    what it read), or on a miss every rank computes its strided share, the shares are gathered on
    every rank and rank 0 writes the one cache file."""
    ctx = context()
    if not ctx.enabled:
        return cached_quantum_descriptors(images, cache_dir, dataset, split, kind, progress=progress)
    main = ctx.is_main
    found: bool | DataError | None = None
    if main:
        try:
            found = quantum_cache_file(images, cache_dir, dataset, split, kind).exists()
        except ConfigError as exc:  # a setting no rank can compute with: raised on every rank
            found = DataError(str(exc))
    found = broadcast_object(found)
    if isinstance(found, DataError):
        raise found
    if found:
        value: np.ndarray | DataError | None = None
        if main:
            try:
                value = cached_quantum_descriptors(images, cache_dir, dataset, split, kind, progress=progress)
            except DataError as exc:
                value = exc
        value = broadcast_object(value)
        if isinstance(value, DataError):
            raise value
        assert value is not None  # rank 0 sent the array it read
        return value

    def compute(all_images: torch.Tensor) -> np.ndarray:
        share = descriptor_share(all_images, ctx.rank, ctx.world_size, kind, progress=progress and main)
        return join_shares(all_gather_objects(share))

    if not main:
        return compute(images)
    return cached_quantum_descriptors(images, cache_dir, dataset, split, kind, progress=progress, compute=compute)


def build_data(config: DataConfig, out_dir: str | Path, progress: bool = True) -> DataBundle:
    """Load, split and prepare the data of ``config``.

    The test split is the dataset's ``test_split`` when named, else ``test_fraction`` of the data
    held out by a stratified split; validation is ``val_fraction`` of the rest, drawn by
    ``split_method``. Both splits are saved under ``<out_dir>/splits/`` and reused.

    Args:
        config: the data section.
        out_dir: the runs folder (holds ``splits/`` and the quantum-descriptor ``cache/``).
        progress: show progress bars while computing quantum descriptors.

    Returns:
        The :class:`DataBundle`.

    Raises:
        DataError: unknown dataset or split, missing files.
        ConfigError: quantum channels asked for images that are not RGB.
    """
    out_dir = Path(out_dir)
    split_dir = out_dir / "splits"
    with main_first():  # under torchrun rank 0 writes new split files, the others read them
        full = load_split(config, config.train_split or dataset_info(config.name).splits[0])
        if config.test_split is not None:
            trainval, test = full, load_split(config, config.test_split)
        else:
            path = _split_file(split_dir, config, "test", config.test_fraction, "stratified")
            trainval, test = _split(
                full, path, config.name, "stratified", config.test_fraction, config.split_seed, ("trainval", "test")
            )
        path = _split_file(split_dir, config, "val", config.val_fraction, config.split_method)
        train, val = _split(
            trainval, path, f"{config.name}:trainval", config.split_method, config.val_fraction, config.split_seed,
            ("train", "val"),
        )
    train, val, test = (_limit(d, config.limit) for d in (train, val, test))
    image_size = config.image_size or train.image_shape[-1]
    weights = None
    if config.class_weights:
        weights = torch.as_tensor(
            class_weights(train.labels.numpy(), train.n_classes, config.class_weight_power), dtype=torch.float32
        )
    extras = None
    if config.quantum_channels:
        if train.image_shape[0] != 3:
            raise ConfigError(
                f"data.quantum_channels needs RGB images; {config.name} has {train.image_shape[0]} channel(s)"
            )
        extras = {
            split: torch.from_numpy(
                np.stack(
                    [
                        _quantum_channel(d.images, out_dir / "cache", config.name, split, kind, progress)
                        for kind in QUANTUM_CHANNEL_MAPS
                    ],
                    axis=1,
                )
            )  # (N, 2, n_qubits)
            for split, d in (("train", train), ("val", val), ("test", test))
        }
    train_transform, eval_transform = build_transforms(config, image_size)
    log.info("data %s: %d train, %d val, %d test items, %d classes", config.name, len(train), len(val), len(test),
             train.n_classes)
    return DataBundle(
        train, val, test, train.n_classes, train.image_shape[0] + (2 if extras else 0),
        train_transform, eval_transform, weights, extras, image_size,
    )
