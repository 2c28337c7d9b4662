"""Property-based fuzzing of the binary readers: random truncations and byte flips of real-format
files (IDX raw and gzip, CIFAR batches, the wafer-map ``.npz`` of ``convert_wm811k``, training
checkpoints) give the reader's typed error or a well-formed read, never another exception.

A mutated file that still reads (a flipped pixel, a flip inside a compressed stream's padding)
must give data of the declared structure: the right shapes, dtypes and label ranges. Bounded to a
few seconds: a few dozen examples per reader (``HYPOTHESIS_PROFILE=thorough`` runs many more).
"""

from __future__ import annotations

import gzip
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from data_writers import lswmd_frame, write_idx, write_lswmd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hqnn.data import convert_wm811k, load_dataset
from hqnn.data.idx import read_idx
from hqnn.exceptions import ConfigError, DataError
from hqnn.train.checkpoint import load_checkpoint, save_checkpoint

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutations(draw, size: int):
    """("truncate", k) keeping the first k bytes, or ("flip", [(position, xor byte), ...])."""
    if draw(st.booleans()):
        return "truncate", draw(st.integers(0, size - 1))
    flips = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(1, 255)), min_size=1, max_size=8))
    return "flip", flips


def _mutate(data: bytes, mutation) -> bytes:
    kind, arg = mutation
    if kind == "truncate":
        return data[:arg]
    out = bytearray(data)
    for position, xor in arg:
        out[position] ^= xor
    return bytes(out)


_ROOT = tempfile.TemporaryDirectory(prefix="hqnn-fuzz-")  # removed when the test process ends


def _fuzz_dir() -> Path:
    """A fresh folder per example (hypothesis examples cannot use pytest's tmp_path)."""
    return Path(tempfile.mkdtemp(dir=_ROOT.name))


# -- IDX ----------------------------------------------------------------------------------------------

_IMAGES = np.random.default_rng(0).integers(0, 256, (4, 6, 5), dtype=np.uint8)
_IDX_RAW = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in _IMAGES.shape) + _IMAGES.tobytes()
_IDX_GZ = gzip.compress(_IDX_RAW, mtime=0)


@FUZZ
@given(data=st.data(), compressed=st.booleans())
def test_idx_reader(data, compressed):
    original = _IDX_GZ if compressed else _IDX_RAW
    mutated = _mutate(original, data.draw(mutations(len(original))))
    path = _fuzz_dir() / ("images-idx3-ubyte" + (".gz" if compressed else ""))
    path.write_bytes(mutated)
    try:
        array = read_idx(path, 3)
    except DataError:
        return
    assert array.ndim == 3 and array.size * array.itemsize == len(gzip.decompress(mutated) if compressed
                                                                  else mutated) - 16


# -- CIFAR batches ------------------------------------------------------------------------------------

def _cifar_batch(protocol: int) -> bytes:
    data = np.random.default_rng(1).integers(0, 256, (3, 3072), dtype=np.uint8)
    return pickle.dumps({b"batch_label": b"training batch 1 of 5", b"labels": [1, 9, 0], b"data": data,
                         b"filenames": [b"a.png", b"b.png", b"c.png"]}, protocol=protocol)


_CIFAR = {protocol: _cifar_batch(protocol) for protocol in (2, 4)}


@FUZZ
@given(data=st.data(), protocol=st.sampled_from(sorted(_CIFAR)))
def test_cifar_reader(data, protocol):
    original = _CIFAR[protocol]
    mutated = _mutate(original, data.draw(mutations(len(original))))
    folder = _fuzz_dir() / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"):
        (folder / name).write_bytes(original if name != "data_batch_2" else mutated)
    try:
        dataset = load_dataset("cifar10", folder, "train")
    except DataError:
        return
    assert dataset.images.shape == (15, 3, 32, 32) and dataset.images.dtype == torch.uint8
    assert int(dataset.labels.min()) >= 0 and int(dataset.labels.max()) <= 9


# -- the wafer-map npz --------------------------------------------------------------------------------

def _wafer_npz() -> bytes:
    folder = _fuzz_dir()
    convert_wm811k(write_lswmd(folder / "LSWMD.pkl", lswmd_frame(4, 2), legacy=False), folder / "wm.npz")
    return (folder / "wm.npz").read_bytes()


_NPZ = _wafer_npz()


@FUZZ
@given(data=st.data())
def test_wafer_npz_reader(data):
    mutated = _mutate(_NPZ, data.draw(mutations(len(_NPZ))))
    path = _fuzz_dir() / "wm.npz"
    path.write_bytes(mutated)
    try:
        wafers = load_dataset("wm811k", path, labelled_only=False)
    except DataError:
        return
    assert len(wafers.maps) == len(wafers.labels) == 6
    assert all(m.ndim == 2 and m.dtype == np.uint8 for m in wafers.maps)
    assert all(-1 <= int(label) < len(wafers.classes) for label in wafers.labels)


# -- checkpoints --------------------------------------------------------------------------------------

def _checkpoint_bytes() -> bytes:
    path = _fuzz_dir() / "checkpoint.pt"
    state = {"model_name": "tiny", "config": {"train": {"epochs": 4}}, "epoch": 3, "phase_index": 0,
             "model": {"w": torch.arange(6.0).reshape(2, 3)}, "optimizer": {"state": {}, "param_groups": []},
             "scheduler": None, "best": None, "history": [{"loss": 0.5}], "rng": {"torch": torch.zeros(4)}}
    save_checkpoint(state, path)  # the keys load_checkpoint checks for, as the trainer writes them
    return path.read_bytes()


_CHECKPOINT = _checkpoint_bytes()


def _read_checkpoint(data) -> object:
    mutated = _mutate(_CHECKPOINT, data.draw(mutations(len(_CHECKPOINT))))
    path = _fuzz_dir() / "checkpoint.pt"
    path.write_bytes(mutated)
    try:
        return load_checkpoint(path)
    except ConfigError:
        return {}


@FUZZ
@given(data=st.data())
def test_checkpoint_reader(data):
    """Checkpoints are read with ``weights_only`` (no code runs); a damaged one is a ConfigError, never
    another exception."""
    _read_checkpoint(data)


def test_checkpoint_with_a_flipped_opcode_is_refused(tmp_path):
    """Found by the fuzzer: one bit turns the final SETITEMS ('u') into TUPLE ('t'); torch does not check
    the archive's CRC, so the file loads as a tuple, which the trainer then fails on."""
    position = _CHECKPOINT.index(b"u.")  # the pickle's last opcode before STOP
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(_mutate(_CHECKPOINT, ("flip", [(position, 1)])))
    with pytest.raises(ConfigError):
        load_checkpoint(path)


@pytest.mark.parametrize("reader", ["idx", "cifar", "npz", "checkpoint"])
def test_unmutated_files_read_back(reader, tmp_path):
    """The fuzzed originals are valid files (else every mutation would trivially be an error)."""
    if reader == "idx":
        path = write_idx(tmp_path / "x-idx3-ubyte", _IMAGES)
        assert np.array_equal(read_idx(path, 3), _IMAGES)
    elif reader == "cifar":
        folder = tmp_path / "cifar-10-batches-py"
        folder.mkdir()
        for i in range(1, 6):
            (folder / f"data_batch_{i}").write_bytes(_CIFAR[2])
        assert len(load_dataset("cifar10", folder, "train")) == 15
    elif reader == "npz":
        (tmp_path / "wm.npz").write_bytes(_NPZ)
        assert len(load_dataset("wm811k", tmp_path / "wm.npz", labelled_only=False)) == 6
    else:
        (tmp_path / "c.pt").write_bytes(_CHECKPOINT)
        assert load_checkpoint(tmp_path / "c.pt")["epoch"] == 3
