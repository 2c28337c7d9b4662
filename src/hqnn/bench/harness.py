"""What every suite shares: settings, inputs and weights, the two timed modes, the correctness check,
and timing one configuration (with the decision to skip it when it would be too slow or too big).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from hqnn.bench.backends import Backend, CircuitCase, flat_weight_grad, make_backend
from hqnn.bench.timing import available_mb, measure
from hqnn.exceptions import ConfigError, HQNNError, MissingDependencyError
from hqnn.sim.circuit import Circuit
from hqnn.sim.execute import run

__all__ = [
    "MODES",
    "Settings",
    "build_and_check",
    "check_backend",
    "check_failure",
    "empty_record",
    "make_inputs",
    "make_weights",
    "skip_reason",
    "step",
    "sum_backward",
    "time_config",
]

log = logging.getLogger(__name__)

MODES = ("forward", "forward+backward")
CHECK_ATOL = 1e-4  # float32 backends against the float64 reference


@dataclass(frozen=True)
class Settings:
    """How to time: ``repeats`` calls at most within ``budget_s`` per configuration; configurations
    predicted to need more than ``max_call_s`` per call, or more memory than is free, are skipped."""

    repeats: int = 5
    budget_s: float = 5.0
    max_call_s: float = 20.0
    threads: int = 2
    device: str = "cpu"
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def make_inputs(circuit: Circuit, batch: int, seed: int = 0) -> torch.Tensor:
    """Angles in [0, π): ``(batch, n_inputs)`` float32, the same for every backend."""
    gen = torch.Generator().manual_seed(seed + batch)
    return torch.rand(batch, circuit.n_inputs, generator=gen) * math.pi


def make_weights(circuit: Circuit, seed: int = 0) -> torch.Tensor:
    """Weights in [0, 2π): ``(n_weights,)`` float32."""
    gen = torch.Generator().manual_seed(seed + 7)
    return torch.rand(circuit.n_weights, generator=gen) * 2 * math.pi


def sum_backward(module: torch.nn.Module, x: torch.Tensor) -> None:
    """``module(x).sum().backward()``, or the module's own ``sum_backward(x)`` where it has one (a per-sample
    loop, or a peer that computes values and gradients in one jitted call)."""
    own = getattr(module, "sum_backward", None)
    if own is not None:
        own(x)
    else:
        module(x).sum().backward()


def step(backend: Backend, x: torch.Tensor, mode: str) -> Callable[[], None]:
    """One call of ``mode``: "forward" under ``no_grad``, or "forward+backward" (``out.sum().backward()``
    with respect to the inputs and the weights)."""
    module = backend.module
    x = x.to(backend.device)
    if mode == "forward":
        def call() -> None:
            with torch.no_grad():
                module(x)
    elif mode == "forward+backward":
        def call() -> None:
            module.zero_grad(set_to_none=True)
            sum_backward(module, x.detach().requires_grad_(True))
    else:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return call


def check_backend(backend: Backend, circuit: Circuit, x: torch.Tensor, weights: torch.Tensor) -> dict:
    """Compare a backend's outputs and the gradients of their sum with respect to the inputs and the
    weights with hqnn's plain float64 gate-by-gate run, through the calls that are timed (the forward
    under ``no_grad``, then :func:`sum_backward`).

    Returns:
        ``{"max_abs_diff", "max_abs_grad_diff", "max_abs_weight_grad_diff": float, "ok": bool}``
        (``ok``: all three within 1e-4).
    """
    xr, wr = x.double().requires_grad_(True), weights.double().requires_grad_(True)
    ref = run(circuit, xr, wr, method="gates")
    ref_grad, ref_weight_grad = torch.autograd.grad(ref.sum(), (xr, wr))
    module = backend.module
    with torch.no_grad():
        out = module(x.to(backend.device))
    xb = x.to(backend.device).requires_grad_(True)
    module.zero_grad(set_to_none=True)
    sum_backward(module, xb)
    assert xb.grad is not None  # xb requires grad and fed the sum
    diffs = [(out.cpu().double() - ref.detach()).abs().max().item(),
             (xb.grad.cpu().double() - ref_grad).abs().max().item(),
             (flat_weight_grad(module, circuit) - ref_weight_grad).abs().max().item() if circuit.n_weights else 0.0]
    module.zero_grad(set_to_none=True)
    return {"max_abs_diff": diffs[0], "max_abs_grad_diff": diffs[1], "max_abs_weight_grad_diff": diffs[2],
            "ok": bool(max(diffs) <= CHECK_ATOL)}


def check_failure(check: dict) -> str:
    """Why a backend failed (or skipped) its check, in one line."""
    if check.get("error") or check.get("skipped"):
        return (check.get("error") or check["skipped"])[:300]
    return (f"outputs differ from the reference by {check['max_abs_diff']:.2e} (input gradients "
            f"{check['max_abs_grad_diff']:.2e}, weight gradients {check.get('max_abs_weight_grad_diff', 0.0):.2e})")


def build_and_check(backend_name: str, case: CircuitCase, circuit: Circuit, weights: torch.Tensor,
                    x: torch.Tensor, device: str) -> tuple[Backend | None, dict]:
    """Build a backend and check it on ``x``; a backend that cannot build or run the circuit gives
    ``(None, check)`` with ``check["error"]`` saying why, one whose package is absent ``check["skipped"]``."""
    try:
        backend = make_backend(backend_name, case, circuit, weights, device)
        return backend, check_backend(backend, circuit, x, weights)
    except MissingDependencyError as exc:
        log.info("%s skipped: %s", backend_name, exc)
        return None, {"max_abs_diff": None, "max_abs_grad_diff": None, "ok": False, "skipped": str(exc)}
    except HQNNError as exc:
        log.warning("%s cannot run %s: %s", backend_name, case.name, exc)
        return None, {"max_abs_diff": None, "max_abs_grad_diff": None, "ok": False,
                      "error": f"{type(exc).__name__}: {exc}"}


def skip_reason(previous: dict | None, growth: float, settings: Settings) -> str | None:
    """Why not to run a configuration expected to cost ``growth`` times ``previous`` (a smaller one), or None."""
    if previous is None:
        return None
    if previous.get("ms") is None:
        return "a smaller configuration was skipped or failed"
    predicted_s = previous["ms_min"] * growth / 1e3  # the best call: one stalled call must not skip the rest
    if predicted_s > settings.max_call_s:
        return f"predicted {predicted_s:.1f} s per call > limit {settings.max_call_s:g} s"
    free = available_mb(settings.device)
    if previous.get("peak_mb") is not None and free is not None and previous["peak_mb"] * growth > 0.8 * free:
        return f"predicted peak {previous['peak_mb'] * growth:.0f} MB > 80% of the {free:.0f} MB free"
    return None


def empty_record(status: str, reason: str) -> dict:
    """The timing fields of a configuration that was not timed (``status`` "skipped" or "failed")."""
    return {"ms": None, "ms_min": None, "n_calls": 0, "peak_mb": None, "status": status, "reason": reason}


def time_config(backend: Backend | None, x: torch.Tensor, mode: str, settings: Settings,
                skip: str | None = None) -> dict:
    """Time one configuration; returns ``{ms, ms_min, n_calls, peak_mb, status, reason, load_avg_1m}``
    (the load average says whether other work on the machine skewed the timing), plus ``compile_s`` for
    a backend that compiles each input shape on its first call (``module.jit_compiles``): the first
    call's time less a steady call's, kept out of ``ms``. ``backend`` may be None only with ``skip``."""
    if skip:
        return empty_record("skipped", skip)
    if backend is None:
        raise ConfigError("time_config needs a backend unless the configuration is skipped; got None")
    call, first_s = step(backend, x, mode), None
    try:
        if getattr(backend.module, "jit_compiles", False):
            start = time.perf_counter()
            call()
            first_s = time.perf_counter() - start
        t = measure(call, repeats=settings.repeats, budget_s=settings.budget_s, device=backend.device)
    except (RuntimeError, MemoryError) as exc:  # out of memory, a backend's own failure
        log.warning("%s %s failed: %s", backend.name, mode, exc)
        return empty_record("failed", f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}")
    record = {"ms": round(t.ms, 4), "ms_min": round(t.ms_min, 4), "n_calls": t.n_calls, "peak_mb": t.peak_mb,
              "status": "ok", "reason": None, "load_avg_1m": round(os.getloadavg()[0], 2)}
    if first_s is not None:
        record["compile_s"] = round(max(first_s - t.ms / 1e3, 0.0), 3)
    return record
