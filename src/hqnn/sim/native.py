"""The native CPU kernel (``native.c``): the whole circuit, forward and adjoint backward, in one call.

Circuits whose gates are single-qubit matrices (optionally controlled) and permutations, measured
by ⟨Z⟩ words or probabilities, are lowered here to a small program that ``native.c`` interprets
for chunks of 16 (complex64) or 8 (complex128) samples at a time, batch-innermost, with the
chunk's state held in cache from the first gate to the measurement. The backward pass is the
adjoint method on the final state (ψ ← U†ψ, λ ← U†λ, dθ = 2 Re⟨λ|∂U|ψ⟩), so memory stays at one
saved state per sample whatever the depth, and the angles' gradients come out directly.

The kernel is compiled with the system C compiler on first use and cached under
``$HQNN_CACHE_DIR`` (default ``~/.cache/hqnn``), keyed by the source, the flags, the compiler and
the CPU. The cache folder is created with mode 0700; a folder or library owned by another user or
writable by group or others is refused (the kernel is then built in a private folder), and a cached
library is loaded only when its SHA-256 equals the one recorded when it was built (see
docs/security.md). When no compiler is available the build fails with a warning once and every
circuit runs on the PyTorch engine (:mod:`hqnn.sim.engine`) instead; ``HQNN_NATIVE=0`` turns the
kernel off.
Set ``HQNN_CC`` to choose the compiler (default ``cc``).

Gates are lowered by :func:`hqnn.sim.prims.lower_op`, as for the engine; the kernel then runs a
two-wire diagonal as controlled or CNOT-conjugated single-qubit gates, and folds a controlled gate
conjugated by fixed gates on its target (CRX = H·CRZ·H) into one. Global phases are kept exactly, but
only measurements are computed here: circuits returning the state run on the engine.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import itertools
import logging
import os
import platform
import re
import shutil
import stat
import subprocess
import tempfile
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hqnn.exceptions import ResourceError, UnsupportedError, ValueRangeError
from hqnn.sim.circuit import CONST, INPUT, Angle, Circuit, Op
from hqnn.sim.engine import EnginePlan, apply_function
from hqnn.sim.gates import GATES, complex_dtype_for, rotation_parts
from hqnn.sim.prims import CNOT_TABLE, FIXED_1Q, lower_op

__all__ = ["MAX_QUBITS", "NativeProgram", "build_library", "cached_library", "eager_tensors", "library", "lower",
           "native_available", "unavailable_reason"]

MAX_QUBITS = 14
"""Largest register the kernel takes (a chunk then holds 2**14 x 16 amplitudes, 2 MB per buffer)."""
SMALL_BATCH_QUBITS, SMALL_BATCH = 13, 4
"""From this many qubits, batches of at most SMALL_BATCH samples run on the engine: the kernel pads a
chunk to 16 samples, and at 13-14 qubits and batch 1 the engine measured about 2x faster (batch 16:
the kernel 1.6-1.8x faster; 12 qubits, batch 1: the kernel 1.2x faster; SEL circuits, forward+backward,
2 threads, AMD EPYC)."""

_SOURCE = Path(__file__).with_name("native.c")
_FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu11")
_VARIANTS = {torch.float32: ("single", 16), torch.float64: ("double", 8)}  # name, samples per chunk
_OP_WIDTH, _NCOEF = 8, 26
LAYOUT = 1
"""Version of the program layout written by :func:`lower`; native.c declares the one it reads
(``hq_layout``), and a library declaring another is rebuilt. Bump both when the layout changes."""
_ZERO2 = np.zeros((2, 2), dtype=complex)
_REAL, _DIAG = 1, 2  # flags of a lowered single-qubit matrix
_STATE: dict = {}  # real dtype -> loaded library, or the reason it is not available

log = logging.getLogger(__name__)


# -- lowering -----------------------------------------------------------------------------------------

class _Builder:
    """Collects the lowered gates: ("u1", target, controls, coefficient row, class, src, index) and
    ("perm", wires, table), in application order."""

    def __init__(self, n: int):
        self.n = n
        self.prims: list[tuple] = []

    def bit(self, wire: int) -> int:
        return 1 << (self.n - 1 - wire)

    def u1(self, target: int, coeffs, angle=None, controls: tuple[int, ...] = ()) -> None:
        c, a, s, k = coeffs
        if angle is None:
            src, idx, scale = 0, 0, 0.0
        else:
            src = {CONST: 0, INPUT: 1}.get(angle.source, 2)
            idx, scale = max(angle.index, 0), float(angle.scale)
        parts = [c, a, s]
        cls = (_REAL if all(np.allclose(m.imag, 0) for m in parts) else 0) | \
            (_DIAG if all(np.allclose(np.diag(np.diag(m)), m) for m in parts) else 0)
        row = np.concatenate([np.stack([m.real, m.imag], -1).reshape(-1) for m in parts] + [[k, scale]])
        self.prims.append(("u1", target, tuple(controls), row, cls, src, idx))

    def perm(self, wires: tuple[int, ...], table: tuple[int, ...]) -> None:
        self.prims.append(("perm", tuple(wires), tuple(table)))

    def grouped(self) -> list[dict]:
        """Ops for the kernel: each single-qubit primitive joins the last group on its target when
        that group has the same controls and nothing since touched its wires (so it commutes into
        place); a group is "initial" when it is the first op on its wire (it then builds the product state)."""
        ops: list[dict] = []
        last_touch: dict[int, int] = {}
        open_group: dict[int, int] = {}
        for prim in self.prims:
            if prim[0] == "perm":
                ops.append({"kind": 1, "wires": prim[1], "table": prim[2]})
                last_touch.update((w, len(ops) - 1) for w in prim[1])
                continue
            _, target, controls, row, cls, src, idx = prim
            wires = (target, *controls)
            k = open_group.get(target)
            if k is not None and ops[k]["controls"] == controls and max(last_touch[w] for w in wires) == k:
                ops[k]["members"].append((row, cls, src, idx))
                continue
            initial = not controls and target not in last_touch
            ops.append({"kind": 0, "target": target, "controls": controls, "initial": initial,
                        "members": [(row, cls, src, idx)]})
            open_group[target] = len(ops) - 1
            last_touch.update((w, len(ops) - 1) for w in wires)
        return ops


def _phase(a: np.ndarray, c: np.ndarray, angle: Angle | None) -> tuple | None:
    """``exp(i(θ·a + c))`` on one wire (a, c per basis state) as ``(coefficients, angle)``; None for the identity."""
    phase = np.diag(np.exp(1j * c))
    if angle is None or not np.any(a):
        return None if np.allclose(c, 0) else ((phase, _ZERO2, _ZERO2, 0.0), None)
    if len({round(abs(v), 12) for v in a if v}) > 1:  # two frequencies: no C + cos·A + sin·S form
        raise UnsupportedError(f"the native kernel cannot run the phase exp(iθ·{a.tolist()})")
    c_, a_, s_, k = rotation_parts(-2 * np.diag(a))
    return (phase @ c_, phase @ a_, phase @ s_, k), angle


def _items(op: Op) -> list[tuple]:
    """The kernel's gates for ``op`` from :func:`hqnn.sim.prims.lower_op` (Rot, U3 and CRot factor by
    factor, so that each folds on its own): ("u1", target, controls, coefficients, angle) and ("perm",
    wires, table). A two-wire diagonal depending on the parity of its bits runs as CNOT·R·CNOT, any
    other as a phase on its second wire and one controlled by its first."""
    if op.matrix is None and GATES[op.name].factors:
        return [item for name, k in GATES[op.name].factors for item in _items(Op(name, op.wires, (op.params[k],)))]
    out: list[tuple] = []
    for p in lower_op(op):
        if p.kind == "local":
            out.append(("u1", p.wires[0], (), p.coeffs, p.angle))
        elif p.kind == "perm":
            out.append(("perm", p.wires, p.table))
        elif p.kind == "diag" and len(p.wires) == 2:
            (w0, w1), (a, c) = p.wires, (np.reshape(v, (2, 2)) for v in p.coeffs)  # [bit 0, bit 1]
            parity = np.allclose(a, a[::-1, ::-1]) and np.allclose(c, c[::-1, ::-1])  # a function of b0 xor b1
            cnot = [("perm", p.wires, CNOT_TABLE)] if parity else []
            parts = [((), a[0], c[0])] + ([] if parity else [((w0,), a[1] - a[0], c[1] - c[0])])
            out += cnot + [("u1", w1, ctl, *ph) for ctl, x, y in parts if (ph := _phase(x, y, p.angle))] + cnot
        else:
            raise UnsupportedError(f"the native kernel has no lowering for {op.name} on {len(op.wires)} wires")
    return _fold(out)


def _fold(items: list[tuple]) -> list[tuple]:
    """A controlled gate (or CNOT) between fixed gates on its target that undo each other (CRX = H·CRZ·H,
    CY = S·CNOT·S†) as one controlled gate."""
    for i, item in enumerate(items):
        core = ("u1", item[1][1], (item[1][0],), (FIXED_1Q["PauliX"], _ZERO2, _ZERO2, 0.0), None) \
            if item[0] == "perm" and item[2] == CNOT_TABLE else item
        rest = items[:i] + items[i + 1:]
        if not (core[0] == "u1" and core[2] and rest and all(
                x[0] == "u1" and x[1] == core[1] and not x[2] and x[4] is None for x in rest)):
            continue
        before, after = (functools.reduce(lambda m, x: x[3][0] @ m, r, np.eye(2)) for r in (items[:i], items[i + 1:]))
        if np.allclose(after @ before, np.eye(2)):
            c, a, s, k = core[3]
            return [(*core[:3], (after @ c @ before, after @ a @ before, after @ s @ before, k), core[4])]
    return items


def lower(circuit: Circuit) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's program ``(int32 array, float64 coefficients)`` for ``circuit``.

    Raises:
        UnsupportedError: naming what the kernel cannot run (then the engine runs the circuit).
    """
    if circuit.n_qubits > MAX_QUBITS:
        raise UnsupportedError(f"the native kernel takes at most {MAX_QUBITS} qubits; got {circuit.n_qubits}")
    if circuit.has_noise:
        raise UnsupportedError("the native kernel simulates pure states; this circuit has noise channels")
    b = _Builder(circuit.n_qubits)
    for op in circuit.ops:
        if op.kind != "gate":
            raise UnsupportedError(f"the native kernel runs gates only; got a {op.kind} ({op.name})")
        if any(a.transform is not None or a.choices > 1 for a in op.params):
            raise UnsupportedError(f"{op.name}: transformed or randomly offset angles are not supported natively")
        for item in _items(op):
            b.perm(item[1], item[2]) if item[0] == "perm" else b.u1(item[1], item[3], item[4], item[2])
    meas: list[list] = []  # [kind, output offset, mask or width, 0 or wires (then their masks' offset)]
    offset = 0
    for m in circuit.measurements:
        if m.kind == "expval" and all(letter == "Z" for letter, _ in m.paulis):
            meas.append([0, offset, sum(b.bit(w) for _, w in m.paulis), 0])
            offset += 1
        elif m.kind == "probs":
            meas.append([1, offset, len(m.wires), m.wires])  # wires replaced by their masks' offset below
            offset += 2 ** len(m.wires)
        else:
            raise UnsupportedError(f"the native kernel measures <Z> words and probabilities; got {m}")
    if not meas:
        raise UnsupportedError("the circuit has no measurement")
    ops = b.grouped()
    coef: list[np.ndarray] = []
    extra: list[int] = []
    ops_at = 10  # the header's length
    meas_at = ops_at + _OP_WIDTH * len(ops)
    extra_at = meas_at + 4 * len(meas)
    records = []
    for group in ops:
        at = extra_at + len(extra)
        if group["kind"] == 1:
            records.append([1, 0, 0, 0, at, 0, 0, 0])
            extra.extend([len(group["wires"]), *[b.bit(w) for w in group["wires"]], *group["table"]])
            continue
        flags = [cls for _, cls, _, _ in group["members"]]
        cls = 2 if all(f & _DIAG for f in flags) else 1 if all(f & _REAL for f in flags) else 0  # C's CLS_*
        records.append([0, b.bit(group["target"]), sum(b.bit(w) for w in group["controls"]), len(group["members"]),
                        at, cls, int(group["initial"]), 0])
        for row, _, src, idx in group["members"]:
            extra.extend([src, idx, _NCOEF * len(coef), 0])
            coef.append(row)
    for rec in meas:
        if rec[0] == 1:
            at = extra_at + len(extra)
            extra.extend(b.bit(w) for w in rec[3])
            rec[3] = at
    n_members = max((len(group["members"]) for group in ops if group["kind"] == 0), default=1)
    head = [b.n, circuit.n_inputs, circuit.n_weights, len(ops), len(meas), offset, ops_at, meas_at, n_members, 0]
    prog = np.array(head + [v for r in records for v in r] + [v for rec in meas for v in rec] + extra, dtype=np.int32)
    return prog, (np.concatenate(coef) if coef else np.zeros(1)).astype(np.float64)


# -- build and load -----------------------------------------------------------------------------------

def _current_uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def _unsafe(st: os.stat_result, what: str, path: Path) -> str | None:
    """Why a cache entry must not be trusted (owned by another user, or writable by group or others), else None."""
    uid = _current_uid()
    if uid is not None and st.st_uid != uid:
        return f"{what} {path} is owned by uid {st.st_uid}, not by this user (uid {uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{what} {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _secure_dir(path: Path) -> str | None:
    """Create ``path`` (mode 0700) if needed; the reason it cannot hold kernels, or None when it can."""
    try:
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError as err:
        return f"cannot create {path}: {err}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    return _unsafe(st, "the kernel cache directory", path)


def _private_temp_dir() -> Path:
    """A fresh 0700 folder for this process only (removed at exit)."""
    path = Path(tempfile.mkdtemp(prefix="hqnn-kernels-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _cache_dir() -> Path:
    """Where kernels are built and loaded from: ``$HQNN_CACHE_DIR/kernels`` (default
    ``~/.cache/hqnn/kernels``), else ``<tmp>/hqnn-kernels-<uid>``, else a fresh private folder.

    A folder is used only when it is (or is created as) a directory owned by this user and not
    writable by group or others: on a shared machine another user must not be able to place the
    library that this process loads."""
    preferred = Path(os.environ.get("HQNN_CACHE_DIR") or Path.home() / ".cache" / "hqnn") / "kernels"
    uid = _current_uid()
    for path in (preferred, Path(tempfile.gettempdir()) / f"hqnn-kernels-{uid if uid is not None else 'user'}"):
        reason = _secure_dir(path)
        if reason is None:
            return path
        log.warning("hqnn: not using %s for the native kernel: %s", path, reason)
    return _private_temp_dir()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record(path: Path) -> Path:
    """The file holding the SHA-256 of ``path`` written when it was built."""
    return path.with_name(path.name + ".sha256")


def _verify(path: Path) -> str | None:
    """Why the cached library ``path`` must not be loaded (foreign, writable by others, no hash record
    or a different hash), or None when it is the library this user built."""
    try:
        for file, what in ((path, "the kernel library"), (_record(path), "the kernel hash record")):
            st = os.lstat(file)
            if not stat.S_ISREG(st.st_mode):
                return f"{file} is not a regular file"
            reason = _unsafe(st, what, file)
            if reason:
                return reason
        recorded = _record(path).read_text().strip()
        actual = _sha256(path)
    except FileNotFoundError as err:
        return f"{err.filename} is missing"
    except OSError as err:
        return f"cannot read {path}: {err}"
    if recorded != actual:
        return f"{path} does not match the SHA-256 recorded when it was built"
    return None


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), platform.processor())
    except OSError:
        return platform.processor()


def _compile(cc: str, source: Path, flags: list[str], libs: list[str], path: Path) -> None:
    """Compile ``source`` into ``path`` atomically (concurrent builds never see a partial file), mode
    0700, and record its SHA-256 beside it."""
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, *flags, str(source), "-o", tmp, *libs, "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{cc} failed: {done.stderr.strip()[-500:]}")
        os.chmod(tmp, 0o700)
        fd, tmp_record = tempfile.mkstemp(suffix=".sha256", dir=path.parent)  # created 0600
        with os.fdopen(fd, "w") as handle:
            handle.write(_sha256(Path(tmp)) + "\n")
        os.replace(tmp_record, _record(path))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_library(source: Path, stem: str, variant: str) -> Path:
    """The verified shared library of the C file ``source`` for ``variant`` ("single": ``-DSINGLE``,
    or "double"), compiled on first use into the kernel cache as ``{stem}_{variant}_{key}.so``, the
    key hashing the source, the flags, the compiler and the CPU. A cached library that fails
    :func:`_verify` is removed and rebuilt; builds of older sources are removed. Tries with glibc's
    vector math library (libmvec) first, then without it (``-DNO_SIMD_MATH``).

    Raises:
        RuntimeError: the compiler failed, or the built library failed verification.
        OSError, subprocess.SubprocessError: no compiler could be run.
    """
    cc = os.environ.get("HQNN_CC", "cc")
    base = [*_FLAGS, *(["-DSINGLE"] if variant == "single" else [])]
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join([source.read_text(), *base, version, _cpu_signature()]).encode()).hexdigest()[:16]
    path = _cache_dir() / f"{stem}_{variant}_{key}.so"
    if os.path.lexists(path):
        reason = _verify(path)
        if reason is None:
            return path
        log.warning("hqnn: rebuilding the native kernel %s: %s", path.name, reason)
        path.unlink(missing_ok=True)
    try:
        _compile(cc, source, [*base, "-fno-math-errno"], ["-lmvec"], path)
    except RuntimeError:
        _compile(cc, source, [*base, "-DNO_SIMD_MATH"], [], path)
    for old in path.parent.glob(f"{stem}_{variant}_*.so*"):  # builds of older sources, and their records
        if old not in (path, _record(path)):
            old.unlink(missing_ok=True)
    reason = _verify(path)
    if reason is not None:
        raise RuntimeError(f"the freshly built kernel failed verification: {reason}")
    return path


def _build(variant: str) -> Path:
    """The circuit kernel (``native.c``) for ``variant``: :func:`build_library`."""
    return build_library(_SOURCE, "hqnn_native", variant)


def _declared_layout(path: Path) -> int | None:
    """The program layout that the library file declares (its ``hq_layout`` string), or None."""
    found = re.search(rb"hqnn-program-layout (\d+)\0", path.read_bytes())
    return int(found.group(1)) if found else None


def _load(variant: str) -> ctypes.CDLL:
    """Build (or reuse) and load the kernel. A library that declares another program layout than
    LAYOUT (built by another hqnn version) is refused before it is loaded, and rebuilt."""
    path = _build(variant)
    declared = _declared_layout(path)
    if declared != LAYOUT:
        log.warning("hqnn: refusing the cached native kernel %s: it reads program layout %s, this hqnn writes "
                    "layout %d; rebuilding it", path, declared, LAYOUT)
        path.unlink(missing_ok=True)
        path = _build(variant)
        declared = _declared_layout(path)
        if declared != LAYOUT:
            raise RuntimeError(f"native.c declares program layout {declared}, native.py writes layout {LAYOUT}")
    lib = ctypes.CDLL(str(path))
    ptr, i32 = ctypes.c_void_p, ctypes.c_int
    lib.hq_forward.argtypes = [ptr, ptr, ptr, ptr, i32, ptr, ptr, i32]
    lib.hq_backward.argtypes = [ptr, ptr, ptr, ptr, i32, ptr, ptr, ptr, ptr, i32]
    lib.hq_forward.restype = lib.hq_backward.restype = i32
    return lib


def cached_library(state: dict, dtype: torch.dtype, load: Callable[[str], ctypes.CDLL],
                   warning: str) -> ctypes.CDLL | None:
    """``state[dtype]``: the library that ``load(variant)`` builds and loads on first use for
    ``float32`` ("single") or ``float64`` ("double"), or None for other dtypes, when it is turned off
    (``HQNN_NATIVE=0``) or when it cannot be built (warned once: ``warning`` formatted with the
    reason); ``state[dtype]`` then holds the reason.

    Shared by the circuit kernel here, the layer kernels (:mod:`hqnn.layers.native_layers`) and the
    one-pass NAdam (:mod:`hqnn.train.optim`)."""
    if dtype not in state:
        if dtype not in _VARIANTS:
            state[dtype] = f"no kernel for {dtype}; float32 and float64 only"
        elif os.environ.get("HQNN_NATIVE", "1") == "0":
            state[dtype] = "disabled by HQNN_NATIVE=0"
        else:
            try:
                state[dtype] = load(_VARIANTS[dtype][0])
            except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                state[dtype] = f"{type(err).__name__}: {err}"
                warnings.warn(warning.format(reason=state[dtype]), RuntimeWarning, stacklevel=3)
    found = state[dtype]
    return None if isinstance(found, str) else found


def library(real_dtype: torch.dtype):
    """The loaded kernel for ``float32`` or ``float64``, or None (with a warning once) when it cannot be built."""
    return cached_library(_STATE, real_dtype, _load,
                          "hqnn: the native CPU kernel could not be built ({reason}); circuits run on the PyTorch "
                          "engine instead (slower)")


@torch.compiler.assume_constant_result  # fixed for the process: torch.compile need not trace the build
def unavailable_reason(real_dtype: torch.dtype = torch.float32) -> str | None:
    """Why the kernel cannot run at this precision (None when it can)."""
    return None if library(real_dtype) is not None else _STATE[real_dtype]


def native_available(real_dtype: torch.dtype = torch.float32) -> bool:
    """Whether the kernel is built and loaded for this precision."""
    return library(real_dtype) is not None


# -- execution ----------------------------------------------------------------------------------------

def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()  # ctypes passes ints (and None) for c_void_p arguments


def _raise(status: int) -> None:
    for bit, name in ((2, "inputs"), (4, "weights")):
        if status & bit:
            raise ValueRangeError(f"{name} contain NaN or infinite values; angles must be finite")
    raise ResourceError("the native kernel could not allocate its work buffers (2 states per thread)")


class NativeProgram:
    """A circuit lowered for the kernel; :meth:`execute` runs a batch through the ``hqnn::native_run``
    operator (autograd, torch.compile and torch.func see one opaque op)."""

    def __init__(self, circuit: Circuit):
        prog, coef = lower(circuit)
        self.prog, self.coef = torch.from_numpy(prog), torch.from_numpy(coef)
        self._tables = (_ptr(self.prog), _ptr(self.coef))  # the tensors live as long as self
        self.n_qubits, self.n_outputs, self.n_ops = circuit.n_qubits, int(prog[5]), int(prog[3])
        self.engine = EnginePlan(circuit)  # higher derivatives differentiate its recomputation
        self.handle = next(_HANDLES)  # how the operators, which take no Python objects, find this program
        _PROGRAMS[self.handle] = self

    def suits(self, batch: int) -> bool:
        """Whether the kernel is the faster choice for this batch size (see SMALL_BATCH_QUBITS)."""
        return self.n_qubits < SMALL_BATCH_QUBITS or batch > SMALL_BATCH

    def threads(self, batch: int, real_dtype: torch.dtype) -> int:
        """Intra-op threads for this call: torch's setting, at most one per chunk of samples.
        (Measured on 2 cores: a second thread pays off from two chunks on, even at 4 qubits.)"""
        return max(1, min(torch.get_num_threads(), -(-batch // _VARIANTS[real_dtype][1])))

    def forward(self, inputs: torch.Tensor, weights: torch.Tensor, save_state: bool):
        lib = library(inputs.dtype)
        batch = inputs.shape[0]
        out = torch.empty(batch, self.n_outputs, dtype=inputs.dtype)
        state = torch.empty((batch, 2**self.n_qubits) if save_state else (0,), dtype=complex_dtype_for(inputs.dtype))
        status = lib.hq_forward(*self._tables, _ptr(inputs), _ptr(weights), batch,
                                _ptr(out), _ptr(state) if save_state else None, self.threads(batch, inputs.dtype))
        if status:
            _raise(status)
        return out, state

    def backward(self, inputs, weights, state, grad_out):
        lib = library(inputs.dtype)
        batch = inputs.shape[0]
        g_in, g_w = torch.zeros_like(inputs), torch.zeros_like(weights)
        status = lib.hq_backward(*self._tables, _ptr(inputs), _ptr(weights), batch,
                                 _ptr(state), _ptr(grad_out), _ptr(g_in), _ptr(g_w), self.threads(batch, inputs.dtype))
        if status:
            _raise(status)
        return g_in, g_w

    def engine_outputs(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The outputs recomputed by the engine with autograd: what higher derivatives differentiate."""
        return self.engine.execute(inputs, weights, complex_dtype_for(inputs.dtype))

    def execute(self, inputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``(B, n_out)`` from CPU ``inputs (B, n_in)`` and ``weights (n_w,)`` of one real dtype."""
        save = torch.is_grad_enabled() and (inputs.requires_grad or weights.requires_grad)
        return apply_function(_NativeRun, inputs.contiguous(), weights.contiguous(), self.handle, save)[0]


_PROGRAMS: weakref.WeakValueDictionary[int, NativeProgram] = weakref.WeakValueDictionary()
_HANDLES = itertools.count()


@torch.library.custom_op("hqnn::native_run", mutates_args=())
def _native_run(inputs: torch.Tensor, weights: torch.Tensor, program: int,
                save_state: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``(B, n_out)`` and the final state ``(B, 2**n)`` (``(0,)`` unless ``save_state``)."""
    return _PROGRAMS[program].forward(inputs, weights, save_state)


@_native_run.register_fake
def _(inputs, weights, program, save_state):
    p = _PROGRAMS[program]
    state_shape = (inputs.shape[0], 2**p.n_qubits) if save_state else (0,)
    state = inputs.new_empty(state_shape, dtype=complex_dtype_for(inputs.dtype))
    return inputs.new_empty(inputs.shape[0], p.n_outputs), state


@torch.library.custom_op("hqnn::native_grad", mutates_args=())
def _native_grad(inputs: torch.Tensor, weights: torch.Tensor, state: torch.Tensor, grad_out: torch.Tensor,
                 program: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The adjoint sweep: gradients of ``sum(grad_out * outputs)`` for inputs and weights."""
    return _PROGRAMS[program].backward(inputs, weights, state, grad_out)


@_native_grad.register_fake
def _(inputs, weights, state, grad_out, program):
    return torch.empty_like(inputs), torch.empty_like(weights)


_EAGER_TYPES = (torch.Tensor, torch.nn.Parameter)  # exact types: fake and functional tensors are subclasses


def eager_tensors(*tensors: torch.Tensor) -> bool:
    """Whether the kernel may be called directly, skipping the operator's dispatch (tens of µs a
    call): eager CPU tensors, neither traced (torch.compile, fake tensors) nor wrapped by torch.func."""
    return not torch.compiler.is_compiling() and all(
        type(t) in _EAGER_TYPES and not torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


class _NativeRun(torch.autograd.Function):
    """Autograd for ``hqnn::native_run``: the kernel's adjoint sweep, or under ``create_graph`` (higher
    derivatives) the gradient of the engine's recomputation. (Not ``register_autograd``: in torch 2.13
    operators that use it fail under torch.func's grad transforms, pytorch/pytorch#179652.)"""

    generate_vmap_rule = True

    @staticmethod
    def forward(inputs, weights, program, save_state):
        if eager_tensors(inputs, weights):
            return _PROGRAMS[program].forward(inputs, weights, save_state)
        return _native_run(inputs, weights, program, save_state)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, ctx.program, _ = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(x, w, output[1])

    @staticmethod
    def backward(ctx, grad_out, _grad_state):
        inputs, weights, state = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph (and torch.func): the engine's differentiable pullback
            g_in, g_w = torch.func.vjp(_PROGRAMS[ctx.program].engine_outputs, inputs, weights)[1](grad_out)
        else:
            grad_out = grad_out.contiguous().to(inputs.dtype)
            backward = _PROGRAMS[ctx.program].backward if eager_tensors(inputs, grad_out) else \
                functools.partial(_native_grad, program=ctx.program)
            g_in, g_w = backward(inputs, weights, state, grad_out)
        return g_in if ctx.needs_input_grad[0] else None, g_w if ctx.needs_input_grad[1] else None, None, None


def _vmap_by_loop(op):
    """A batching rule that runs ``op`` once per vmapped slice (the kernel batches its own way)."""
    def rule(info, in_dims, *args):
        rows = [op(*[a.select(d, i) if d is not None else a for a, d in zip(args, in_dims)])
                for i in range(info.batch_size)]
        return tuple(torch.stack(parts) for parts in zip(*rows)), (0, 0)
    return rule


_native_run.register_vmap(_vmap_by_loop(_native_run))
_native_grad.register_vmap(_vmap_by_loop(_native_grad))
