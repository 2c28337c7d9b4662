"""WM-811K wafer maps (Wu et al., IEEE TSM 2015) from ``LSWMD.pkl`` or from a converted ``.npz``.

The original ``LSWMD.pkl`` is a pandas DataFrame pickled in 2015 by a very old pandas: it names
modules such as ``pandas.indexes.base`` that modern pandas no longer has. It is read here with
the legacy-aware restricted unpickler of :mod:`hqnn.data._pickle` (compression chosen by the
extension: ``.pkl``, ``.pkl.xz``, ``.pkl.gz``, ``.pkl.bz2``). **Unpickling can run code from the
file**: load only a pickle from a source you trust, and convert it once with
:func:`convert_wm811k` to an ``.npz`` that later runs read with ``allow_pickle=False``.

Columns used: ``waferMap`` (2-D uint8, 0 = no die, 1 = pass, 2 = fail; sizes vary), ``failureType``
(a nested array such as ``array([['Edge-Ring']])``, empty when unlabelled), ``dieSize`` and, when
present, ``trianTestLabel`` (sic; ``[['Training']]`` / ``[['Test']]``).
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hqnn.data._files import read_bytes, resolve_root
from hqnn.data._pickle import load_pickle
from hqnn.exceptions import DataError, require

__all__ = ["WaferMapSet", "load_wm811k", "convert_wm811k", "WM811K_CLASSES"]

WM811K_CLASSES = ("Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Near-full", "Random", "Scratch", "none")
_SPLIT_TAGS = {"train": "Training", "test": "Test"}
_NPZ_VERSION = 1
_PICKLE_SUFFIXES = (".pkl", ".pickle")


@dataclass
class WaferMapSet:
    """Wafer maps of varying sizes with their labels; prepare them with :meth:`to_images`.

    Attributes:
        maps: list of N 2-D uint8 arrays with values in {0, 1, 2}.
        labels: (N,) int64, index into ``classes``, -1 for unlabelled maps.
        die_size: (N,) float64 number of dies per wafer.
        split_tags: (N,) str, the ``trianTestLabel`` of each map ("Training", "Test" or ""), or
            None when the file has no such column.
        classes: the failure types, index = label.
        source: the file read.
    """

    maps: list[np.ndarray]
    labels: np.ndarray
    die_size: np.ndarray
    split_tags: np.ndarray | None
    classes: tuple[str, ...] = WM811K_CLASSES
    source: str = ""

    def __len__(self) -> int:
        return len(self.maps)

    def select(self, mask_or_indices) -> WaferMapSet:
        """The maps picked by a boolean mask or an index array (DataError when none is picked)."""
        index = np.asarray(mask_or_indices)
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
        if index.size == 0:
            raise DataError(f"{self.source}: the selection of wafer maps is empty")
        return WaferMapSet(
            [self.maps[i] for i in index],
            self.labels[index],
            self.die_size[index],
            None if self.split_tags is None else self.split_tags[index],
            self.classes,
            self.source,
        )

    def class_counts(self) -> np.ndarray:
        """Labelled maps per class, shape (n_classes,) int64."""
        return np.bincount(self.labels[self.labels >= 0], minlength=len(self.classes))

    def to_images(self, size: int = 32, encoding: str = "scalar", resize: str = "nearest"):
        """Resize every map to ``size`` x ``size`` as an ImageDataset.

        Args:
            size: output side length.
            encoding: ``"scalar"`` (one channel, values {0, 0.5, 1}) or ``"onehot"`` (3 channels).
            resize: ``"nearest"`` neighbour or ``"max"`` (a failing die anywhere in a cell marks it).

        Returns:
            ImageDataset with float images (N, 1 or 3, size, size); unlabelled maps keep label -1.
        """
        import torch

        from hqnn.data.dataset import ImageDataset
        from hqnn.data.wafer_maps import wafer_maps_to_tensor

        return ImageDataset(
            wafer_maps_to_tensor(self.maps, size, encoding, resize),
            torch.from_numpy(self.labels),
            self.classes,
            name="wm811k",
            split="all",
            source=self.source,
        )


def load_wm811k(path=None, split: str = "all", labelled_only: bool = True) -> WaferMapSet:
    """Load WM-811K from ``LSWMD.pkl[.xz|.gz|.bz2]`` or from an ``.npz`` made by :func:`convert_wm811k`.

    Warning: reading a pickle can run code from the file; read only a trusted copy, or convert it.

    Args:
        path: the ``.pkl``/``.pkl.xz``/``.npz`` file, or a folder holding exactly one of them.
        split: ``"all"``, or ``"train"``/``"test"`` to keep the maps whose ``trianTestLabel`` is
            Training/Test (needs that column, which the original file has).
        labelled_only: keep only maps with a failure type (default); False keeps the unlabelled
            ones too, with label -1.

    Returns:
        The wafer maps as a :class:`WaferMapSet`.

    Raises:
        DataError: the file is missing, unreadable or lacks the expected columns; an unknown
            failure type; a map that is not 2-D with values in {0, 1, 2}; an empty selection.
        MissingDependencyError: a pickle is given and pandas is not installed.
    """
    if split not in ("all", *_SPLIT_TAGS):
        raise DataError(f"wm811k: split must be 'all', 'train' or 'test'; got {split!r}")
    file = _resolve_file(path)
    wafers = _read_npz(file) if file.suffix == ".npz" else _read_pickle(file)
    keep = np.ones(len(wafers), dtype=bool)
    if labelled_only:
        keep &= wafers.labels >= 0
    if split != "all":
        if wafers.split_tags is None:
            raise DataError(f"{file}: has no trianTestLabel column, so split {split!r} is undefined; use split='all'")
        keep &= wafers.split_tags == _SPLIT_TAGS[split]
    return wafers if keep.all() else wafers.select(keep)


def convert_wm811k(src, dst) -> Path:
    """Convert an ``LSWMD.pkl`` (any compression) once into a pickle-free ``.npz``.

    The ``.npz`` holds ``maps`` (all maps flattened and concatenated, uint8), ``shapes`` (N, 2),
    ``labels`` (N,) with -1 for unlabelled, ``die_size``, ``classes``, optionally ``split_tags``, and
    a format version; it loads with ``allow_pickle=False``. Every map, labelled or not, is kept.

    Args:
        src: the pickle (trusted: reading it can run code from the file).
        dst: the ``.npz`` to write (the suffix is added when missing).

    Returns:
        The path written.

    Raises:
        DataError: as :func:`load_wm811k`; also when ``dst`` is a folder, lies under a file, or cannot
            be written.
    """
    dst = Path(dst)
    if dst.is_dir():
        raise DataError(f"convert-wm811k: the destination must be a .npz file name; got the folder {dst} "
                        f"(use e.g. {dst / 'LSWMD.npz'})")
    if dst.suffix != ".npz":
        dst = dst.with_name(dst.name + ".npz")
    if dst.is_dir():
        raise DataError(f"convert-wm811k: the destination {dst} is a folder; expected a .npz file name")
    blocker = next((parent for parent in dst.parents if parent.exists() and not parent.is_dir()), None)
    if blocker is not None:
        raise DataError(f"convert-wm811k: cannot write {dst}: {blocker} is a file, expected a folder")
    wafers = _read_pickle(_resolve_file(src))
    arrays: dict[str, Any] = {
        "format_version": np.array(_NPZ_VERSION),
        "maps": np.concatenate([m.ravel() for m in wafers.maps]) if wafers.maps else np.zeros(0, np.uint8),
        "shapes": np.array([m.shape for m in wafers.maps], dtype=np.int64).reshape(-1, 2),
        "labels": wafers.labels,
        "die_size": wafers.die_size,
        "classes": np.array(wafers.classes),
    }
    if wafers.split_tags is not None:
        arrays["split_tags"] = wafers.split_tags.astype(str)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(dst, **arrays)
    except OSError as exc:
        raise DataError(f"convert-wm811k: cannot write {dst}: {type(exc).__name__}: {exc.strerror or exc}") from exc
    return dst


def _resolve_file(path) -> Path:
    """The WM-811K file: ``path`` itself, or the only pickle/npz in the folder ``path``."""
    root = resolve_root(path, "wm811k", "LSWMD.pkl (optionally .xz/.gz/.bz2) or a converted .npz")
    if root.is_file():
        return root
    candidates = sorted(f for f in root.iterdir() if f.name.startswith("LSWMD") and _is_supported(f))
    if len(candidates) != 1:
        raise DataError(f"{root}: expected one LSWMD.pkl[.xz|.gz|.bz2] or LSWMD*.npz file; "
                        f"found {[c.name for c in candidates]}")
    return candidates[0]


def _is_supported(file: Path) -> bool:
    stem_suffix = Path(file.stem).suffix if file.suffix in (".xz", ".gz", ".bz2") else file.suffix
    return file.suffix == ".npz" or stem_suffix in _PICKLE_SUFFIXES


def _read_pickle(file: Path) -> WaferMapSet:
    """Unpickle an LSWMD DataFrame (old or new pandas) and extract maps, labels and tags."""
    pandas = require("pandas", "wafer")
    frame = load_pickle(read_bytes(file), file)
    if not isinstance(frame, pandas.DataFrame):
        raise DataError(f"{file}: expected a pickled pandas DataFrame; got {type(frame).__name__}")
    missing = {"waferMap", "failureType"} - set(frame.columns)
    if missing:
        raise DataError(f"{file}: missing column(s) {sorted(missing)}; columns are {list(frame.columns)}")
    maps = [_check_map(m, file, i) for i, m in enumerate(frame["waferMap"].to_numpy())]
    index = {name: i for i, name in enumerate(WM811K_CLASSES)}
    labels = np.empty(len(maps), dtype=np.int64)
    for row, value in enumerate(frame["failureType"].to_numpy()):
        name = _unwrap(value)
        if name and name not in index:
            raise DataError(f"{file}: row {row} has unknown failureType {name!r}; expected one of {WM811K_CLASSES}")
        labels[row] = index[name] if name else -1
    die_size = frame["dieSize"].to_numpy(np.float64) if "dieSize" in frame else np.full(len(maps), np.nan)
    tags = None
    if "trianTestLabel" in frame:
        tags = np.array([_unwrap(v) for v in frame["trianTestLabel"].to_numpy()], dtype=str)
    return WaferMapSet(maps, labels, die_size, tags, WM811K_CLASSES, str(file))


def _unwrap(value) -> str:
    """``array([['Edge-Ring']])`` -> "Edge-Ring"; an empty array, None or NaN -> ""."""
    if isinstance(value, np.ndarray):
        return str(value.ravel()[0]) if value.size else ""
    if isinstance(value, (list, tuple)):
        return _unwrap(np.asarray(value))
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _check_map(value, file: Path, row: int) -> np.ndarray:
    """A wafer map as a 2-D uint8 array with values in {0, 1, 2}."""
    array = np.asarray(value)
    if array.ndim != 2 or array.size == 0:
        raise DataError(f"{file}: row {row}: waferMap must be a non-empty 2-D array; got shape {array.shape}")
    if array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 2:
            raise DataError(f"{file}: row {row}: waferMap values must be 0, 1 or 2; found {array.min()}..{array.max()}")
        array = array.astype(np.uint8)
    elif array.max() > 2:
        raise DataError(f"{file}: row {row}: waferMap values must be 0, 1 or 2; found {array.max()}")
    return array


def _read_npz(file: Path) -> WaferMapSet:
    """Read an ``.npz`` written by :func:`convert_wm811k` (no pickle involved)."""
    try:
        with np.load(file, allow_pickle=False) as archive:
            content = {key: archive[key] for key in archive.files}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, zlib.error, NotImplementedError, KeyError) as exc:
        # zlib.error: a damaged compressed member; NotImplementedError: an unknown compression method
        raise DataError(f"{file}: not a readable .npz ({type(exc).__name__}: {exc})") from exc
    missing = {"format_version", "maps", "shapes", "labels", "die_size", "classes"} - set(content)
    if missing:
        raise DataError(f"{file}: not a WM-811K .npz from convert_wm811k (missing {sorted(missing)})")
    if int(content["format_version"]) != _NPZ_VERSION:
        raise DataError(f"{file}: format version {int(content['format_version'])}; "
                        f"this hqnn reads version {_NPZ_VERSION}")
    shapes, flat, labels = content["shapes"], content["maps"], content["labels"]
    if shapes.ndim != 2 or shapes.shape[1] != 2:
        raise DataError(f"{file}: 'shapes' must have shape (N, 2); got {shapes.shape}")
    sizes = shapes.prod(axis=1)
    if int(sizes.sum()) != flat.size or len(labels) != len(shapes) or flat.dtype != np.uint8:
        raise DataError(
            f"{file}: inconsistent arrays ({len(shapes)} shapes covering {int(sizes.sum())} values, "
            f"{flat.size} map values of type {flat.dtype}, {len(labels)} labels)"
        )
    classes = tuple(str(c) for c in content["classes"])
    if labels.size and (labels.min() < -1 or labels.max() >= len(classes)):
        raise DataError(f"{file}: labels must lie in [-1, {len(classes) - 1}]; found {labels.min()}..{labels.max()}")
    pieces = np.split(flat, np.cumsum(sizes)[:-1]) if len(sizes) else []
    maps = [piece.reshape(shape) for piece, shape in zip(pieces, shapes.tolist())]
    return WaferMapSet(maps, labels.astype(np.int64), content["die_size"], content.get("split_tags"), classes,
                       str(file))
