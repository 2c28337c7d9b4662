"""Writers for small files in the real dataset formats (imported by the tests in this folder)."""

from __future__ import annotations

import copyreg
import gzip
import lzma
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when ``compress``."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_mnist(folder: Path, n_train: int = 12, n_test: int = 5, compress: bool = True, seed: int = 0):
    """A tiny MNIST-layout folder; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    content = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
        content[split] = (images, labels)
    return content


def write_cifar_batch(path: Path, data: np.ndarray, labels: dict[str, list[int]]) -> None:
    """A CIFAR batch: a dict with bytes keys, as the Python 2 originals read with encoding='bytes'."""
    batch = {b"data": data, **{key.encode(): value for key, value in labels.items()}}
    path.write_bytes(pickle.dumps(batch, protocol=2))


# ---- an LSWMD.pkl as pickled by pandas 0.19 (module paths that modern pandas no longer has) ----

_PLACEHOLDERS = {  # placeholder module.name -> the old path written into the pickle
    ("hqnn_legacy_indexes_base", "_new_Index"): ("pandas.indexes.base", "_new_Index"),
    ("hqnn_legacy_indexes_base", "Index"): ("pandas.indexes.base", "Index"),
    ("hqnn_legacy_indexes_numeric", "Int64Index"): ("pandas.indexes.numeric", "Int64Index"),
    ("hqnn_legacy_internals", "BlockManager"): ("pandas.core.internals", "BlockManager"),
    ("hqnn_legacy_frame", "DataFrame"): ("pandas.core.frame", "DataFrame"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy.core.multiarray", "_reconstruct"),
}


class _Legacy:
    """An object that pickles as ``copyreg.__newobj__(type(self))`` with a given state."""

    def __init__(self, state):
        self.state = state

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (type(self),), self.state


class _LegacyIndex:
    """Pickles as pandas 0.19 did: ``_new_Index(cls, {"data": ..., "name": ...})``."""

    def __init__(self, new_index, cls, index):
        data = np.asarray(index, dtype=np.int64 if index.dtype.kind == "i" else object)
        self.reduced = new_index, (cls, {"data": data, "name": index.name})

    def __reduce_ex__(self, protocol):
        return self.reduced


def legacy_lswmd_bytes(frame) -> bytes:
    """Pickle ``frame`` (protocol 2) with the object layout and module paths of pandas 0.19."""
    fakes = {}
    for module_name, name in _PLACEHOLDERS:
        if module_name.startswith("hqnn_legacy"):
            module = fakes.setdefault(module_name, types.ModuleType(module_name))
            obj = (lambda *a: None) if name.startswith("_") else type(name, (_Legacy,), {})
            obj.__module__, obj.__qualname__, obj.__name__ = module_name, name, name
            setattr(module, name, obj)
    base, numeric = fakes["hqnn_legacy_indexes_base"], fakes["hqnn_legacy_indexes_numeric"]

    def legacy_index(index):
        return _LegacyIndex(base._new_Index, numeric.Int64Index if index.dtype.kind == "i" else base.Index, index)

    manager = frame._mgr
    axes = [legacy_index(axis) for axis in manager.axes]
    blocks = [{"values": b.values, "mgr_locs": b.mgr_locs.indexer} for b in manager.blocks]
    items = [legacy_index(manager.items[b.mgr_locs.indexer]) for b in manager.blocks]
    state = (axes, [b.values for b in manager.blocks], items, {"0.14.1": {"axes": axes, "blocks": blocks}})
    legacy_manager = fakes["hqnn_legacy_internals"].BlockManager(state)
    legacy_frame = fakes["hqnn_legacy_frame"].DataFrame({"_data": legacy_manager, "_typ": "dataframe", "_metadata": []})
    sys.modules.update(fakes)
    try:
        data = pickle.dumps(legacy_frame, protocol=2)
    finally:
        for module_name in fakes:
            del sys.modules[module_name]
    for (module_name, name), (old_module, old_name) in _PLACEHOLDERS.items():
        data = data.replace(f"c{module_name}\n{name}\n".encode(), f"c{old_module}\n{old_name}\n".encode())
    return data


def lswmd_frame(n_labelled: int = 6, n_unlabelled: int = 3, with_tags: bool = True, seed: int = 0):
    """A small DataFrame shaped like LSWMD.pkl (maps of varying size, nested-array labels)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    types_ = ["Center", "Edge-Ring", "none", "Scratch", "Loc", "none"]
    rows = []
    for i in range(n_labelled + n_unlabelled):
        shape = (int(rng.integers(5, 12)), int(rng.integers(5, 12)))
        labelled = i < n_labelled
        rows.append(
            {
                "waferMap": rng.integers(0, 3, shape).astype(np.uint8),
                "dieSize": float(shape[0] * shape[1]),
                "lotName": f"lot{i}",
                "waferIndex": float(i + 1),
                "trianTestLabel": np.array([["Training" if i % 2 == 0 else "Test"]]) if labelled else np.zeros((0, 0)),
                "failureType": np.array([[types_[i % len(types_)]]]) if labelled else np.zeros((0, 0)),
            }
        )
    frame = pd.DataFrame(rows)
    return frame if with_tags else frame.drop(columns=["trianTestLabel"])


def write_lswmd(path: Path, frame, legacy: bool = True) -> Path:
    """Write ``frame`` as an LSWMD pickle, compressed by the file extension (.xz or .gz)."""
    data = legacy_lswmd_bytes(frame) if legacy else pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    if path.suffix == ".xz":
        data = lzma.compress(data)
    elif path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path
