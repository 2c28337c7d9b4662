"""Hostile dataset pickles: every payload that names a function or class outside the exact list the
real files need (numpy arrays and dtypes, pandas frames) is refused with a DataError, before its
module is imported, and leaves the file system exactly as it was."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from data_writers import write_cifar_batch, write_lswmd, lswmd_frame

from hqnn.cli import main
from hqnn.data import load_dataset
from hqnn.data._pickle import load_pickle
from hqnn.exceptions import DataError


class _Ref:
    """A global written into a payload by name (``module.name``), never imported while building it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


def _global(ref: _Ref, protocol: int) -> bytes:
    if protocol < 4:  # GLOBAL: "c module\n name\n"
        return f"c{ref.module}\n{ref.name}\n".encode()
    text = [part.encode() for part in (ref.module, ref.name)]  # STACK_GLOBAL: two strings, then \x93
    return b"".join(b"\x8c" + bytes([len(t)]) + t for t in text) + b"\x93"


def _value(item, protocol: int) -> bytes:
    if isinstance(item, _Ref):
        return _global(item, protocol)
    body = pickle.dumps(item, protocol=protocol)[2:-1]  # without PROTO and STOP
    return body[9:] if body[:1] == b"\x95" else body  # and without a FRAME header


def _payload(module: str, name: str, *args, protocol: int = 2) -> bytes:
    """A pickle of ``{"data": module.name(*args)}`` written opcode by opcode (building it runs nothing)."""
    key = b"X" + len(b"data").to_bytes(4, "little") + b"data"
    call = _global(_Ref(module, name), protocol) + b"(" + b"".join(_value(a, protocol) for a in args) + b"tR"
    return b"\x80" + bytes([protocol]) + b"}" + key + call + b"s."


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _payloads(tmp: Path) -> dict[str, bytes]:
    victim, created = str(tmp / "victim.bin"), str(tmp / "created.bin")
    return {
        "memmap_creates_file": _payload("numpy", "memmap", created, np.dtype(np.uint8), "w+", 0, (16,)),
        "memmap_truncates_file": _payload("numpy", "memmap", victim, np.dtype(np.uint8), "w+", 0, (1,)),
        "memmap_via_core_path": _payload("numpy.core.memmap", "memmap", victim, np.dtype(np.uint8), "w+", 0, (1,)),
        "reconstruct_memmap_class": _payload("numpy._core.multiarray", "_reconstruct",
                                             _Ref("numpy", "memmap"), (0,), b"b"),
        "os_system": _payload("os", "system", f"touch {created}"),
        "posix_system": _payload("posix", "system", f"touch {created}"),
        "subprocess_popen": _payload("subprocess", "Popen", ["touch", created]),
        "subprocess_check_call": _payload("subprocess", "check_call", ["touch", created]),
        "builtins_eval": _payload("builtins", "eval", f"open({created!r}, 'w')"),
        "builtins_exec": _payload("builtins", "exec", f"open({created!r}, 'w')"),
        "builtins_open": _payload("builtins", "open", created, "w"),
        "py2_builtin_open": _payload("__builtin__", "open", created, "w"),
        "builtins_getattr": _payload("builtins", "getattr", 0, "__class__"),
        "builtins_import": _payload("builtins", "__import__", "this"),
        "numpy_load": _payload("numpy", "load", victim, None, True),
        "numpy_fromfile": _payload("numpy", "fromfile", victim),
        "numpy_save": _payload("numpy", "save", created, 0),
        "numpy_open_memmap": _payload("numpy.lib.format", "open_memmap", created, "w+", np.dtype(np.uint8), (4,)),
        "importlib_import_module": _payload("importlib", "import_module", "this"),
        "import_side_effect_module": _payload("this", "s"),
        "pandas_read_pickle": _payload("pandas", "read_pickle", victim),
        "pandas_read_csv": _payload("pandas.io.parsers", "read_csv", victim),
        "shutil_rmtree": _payload("shutil", "rmtree", str(tmp / "keep")),
        "pickle_loads": _payload("pickle", "loads", b"\x80\x02N."),
        "functools_partial": _payload("functools", "partial", print),
        "operator_methodcaller": _payload("operator", "methodcaller", "write_text", "x"),
        "dotted_method_protocol4": _payload("numpy", "ndarray.tofile", victim, protocol=4),
        "dotted_pathlib_protocol4": _payload("pathlib", "Path.write_text", victim, protocol=4),
        "codecs_encode_non_latin1": _payload("_codecs", "encode", "aGk=", "base64"),
        "torch_load": _payload("torch", "load", victim),
    }


CASES = sorted(_payloads(Path("/nonexistent")))


@pytest.fixture
def sandbox(tmp_path):
    (tmp_path / "victim.bin").write_bytes(b"precious data " * 64)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file.txt").write_text("keep me")
    return tmp_path


@pytest.mark.parametrize("case", CASES)
def test_payload_refused_and_nothing_touched(sandbox, case):
    data = _payloads(sandbox)[case]
    before = _snapshot(sandbox)
    imported_before = "this" in sys.modules
    with pytest.raises(DataError, match="refusing to unpickle|latin-1"):
        load_pickle(data, sandbox / "batch")
    assert _snapshot(sandbox) == before
    assert ("this" in sys.modules) == imported_before  # refused before any import


@pytest.mark.parametrize("case", ["memmap_truncates_file", "memmap_creates_file", "os_system", "builtins_open"])
def test_hostile_cifar_batch_through_the_cli(sandbox, case, capsys):
    folder = sandbox / "cifar-10-batches-py"
    folder.mkdir()
    good = np.zeros((2, 3072), np.uint8)
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", good, {"labels": [0, 1]})
    (folder / "data_batch_3").write_bytes(_payloads(sandbox)[case])
    before = _snapshot(sandbox)
    assert main(["data", "info", "cifar10", "--path", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hqnn data: error:") and "refusing to unpickle" in err and "\n" not in err
    assert _snapshot(sandbox) == before


def test_hostile_lswmd_refused(sandbox):
    path = sandbox / "LSWMD.pkl"
    path.write_bytes(_payloads(sandbox)["memmap_truncates_file"])
    before = _snapshot(sandbox)
    with pytest.raises(DataError, match="refusing to unpickle numpy.memmap"):
        load_dataset("wm811k", path)
    assert _snapshot(sandbox) == before


def test_real_formats_still_load(tmp_path):
    """The allow-list is not too tight: CIFAR batches in every protocol, old and new pandas frames."""
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        batch = {b"data": data, b"labels": [3, 4], b"scalar": np.float32(1.5), "text": "caf\xe9"}
        out = load_pickle(pickle.dumps(batch, protocol=protocol), tmp_path / "b")
        assert np.array_equal(out[b"data"], data) and out[b"scalar"] == np.float32(1.5) and out["text"] == "caf\xe9"
    frame = lswmd_frame()
    for legacy in (True, False):
        wafers = load_dataset("wm811k", write_lswmd(tmp_path / f"LSWMD{legacy}.pkl", frame, legacy=legacy),
                              labelled_only=False)
        assert len(wafers) == len(frame)
        assert all(np.array_equal(a, b) for a, b in zip(wafers.maps, frame["waferMap"]))


def test_real_lswmd_dev_file_loads(shared_data):
    wafers = load_dataset("wm811k", shared_data / "wm811k" / "LSWMD_labeled_dev.pkl.xz")
    assert len(wafers) == 49798
    assert int(wafers.class_counts().max()) == 29383  # "none", as ../shared/data/README.md lists


def test_no_file_descriptor_leak_on_refusal(sandbox):
    fds = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else None
    for case in CASES:
        with pytest.raises(DataError):
            load_pickle(_payloads(sandbox)[case], sandbox / "x")
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds
