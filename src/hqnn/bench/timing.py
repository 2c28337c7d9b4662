"""The one timing function every backend goes through, its peak-memory probe, and the machine record.

:func:`measure` calls a function once to warm up and once to calibrate, then takes up to ``repeats``
samples (each the mean of enough back-to-back calls to last 20 ms) within ``budget_s``, and returns
the median. Peak memory is the process's high-water mark
(``VmHWM``, reset through ``/proc/self/clear_refs``) above the resident size before the
configuration, or ``torch.cuda.max_memory_allocated`` on CUDA.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import torch

__all__ = ["Timing", "available_mb", "measure", "machine_info", "track_live_memory", "versions"]


@dataclass(frozen=True)
class Timing:
    """Median and best milliseconds per call over ``n_calls`` timed calls, and the peak memory in MB."""

    ms: float
    ms_min: float
    n_calls: int
    peak_mb: float | None


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def track_live_memory() -> None:
    """Make the process's resident size follow live memory: glibc keeps freed blocks of a few MB in its
    heap (its mmap threshold grows with every such free), so the high-water mark would also count
    fragmentation. A fixed 64 KiB threshold sends every tensor of that size to mmap, freed at once.
    Only for the memory suite: page faults on every large allocation slow timed runs down."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 65536)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _reset_peak(device: torch.device) -> float | None:
    """Reset the peak-memory counter; returns the baseline in MB (None when it cannot be read)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        # hand freed heap pages back to the OS first, so that the baseline RSS is what is really in use
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return None
    rss = _proc_status_kb("VmRSS")
    return None if rss is None else rss / 1024


def _peak_mb(device: torch.device, baseline: float | None) -> float | None:
    if baseline is None:
        return None
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20 - baseline
    hwm = _proc_status_kb("VmHWM")
    return None if hwm is None else hwm / 1024 - baseline


def measure(fn: Callable[[], object], *, repeats: int = 5, budget_s: float = 5.0,
            device: torch.device | str = "cpu", min_sample_s: float = 0.02) -> Timing:
    """Time ``fn()``: one warm-up call and one calibration call, then up to ``repeats`` samples within
    ``budget_s`` (at least one). A sample is the mean over ``k`` back-to-back calls, ``k`` chosen
    from the calibration call so that a sample lasts at least ``min_sample_s`` (at most 100,000 calls):
    sub-millisecond calls are then not at the mercy of one clock reading.

    Args:
        fn: the work of one call (it must finish its own device work or leave it to the sync here).
        repeats: the most samples.
        budget_s: seconds after which no new sample starts (the warm-up counts).
        device: where ``fn`` computes; CUDA work is synchronised before each clock reading.
        min_sample_s: the shortest sample.

    Returns:
        A :class:`Timing`: median and best ms per call over the samples, the number of timed calls,
        peak MB above the baseline.
    """
    device = torch.device(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    gc.collect()
    baseline = _reset_peak(device)
    start = time.perf_counter()
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    one = time.perf_counter() - t0
    spent = time.perf_counter() - start
    calls = max(1, min(100_000, int(min_sample_s / max(one, 1e-7))))
    times: list[float] = []
    while not times or (len(times) < repeats and spent < budget_s):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        dt = time.perf_counter() - t0
        times.append(dt / calls)
        spent += dt
    peak = _peak_mb(device, baseline)
    return Timing(1e3 * statistics.median(times), 1e3 * min(times), len(times) * calls,
                  None if peak is None else round(peak, 1))


def available_mb(device: torch.device | str = "cpu") -> float | None:
    """Memory free for a new configuration: ``MemAvailable`` on the CPU, free GPU memory on CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 2**20
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: torch.device | str = "cpu") -> dict:
    """CPU model, cores, torch threads, platform, memory, load average and (on CUDA) the GPU name."""
    device = torch.device(device)
    mem_kb = None
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "memory_gb": None if mem_kb is None else round(mem_kb / 2**20, 1),
        "device": str(device),
        "load_avg_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews timings
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def versions() -> dict:
    """Versions of python, torch, numpy, pennylane, pennylane-lightning, the peers (tensorcircuit-ng, jax,
    pyqtorch, qiskit, qiskit-machine-learning) and hqnn (None when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__}
    for key, dist in (("numpy", "numpy"), ("pennylane", "pennylane"), ("lightning", "pennylane_lightning"),
                      ("tensorcircuit", "tensorcircuit-ng"), ("jax", "jax"), ("pyqtorch", "pyqtorch"),
                      ("qiskit", "qiskit"), ("qiskit_ml", "qiskit-machine-learning"), ("hqnn", "hqnn")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out
