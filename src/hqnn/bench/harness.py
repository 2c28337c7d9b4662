"""What every suite shares: settings, inputs and weights, the two timed modes, the correctness check,
and timing one configuration (with the decision to skip it when it would be too slow or too big).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from hqnn.bench.backends import Backend, CircuitCase, make_backend
from hqnn.bench.timing import available_mb, measure
from hqnn.exceptions import ConfigError, HQNNError
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
        sum_backward = getattr(module, "sum_backward", None) or (lambda inputs: module(inputs).sum().backward())

        def call() -> None:
            module.zero_grad(set_to_none=True)
            sum_backward(x.detach().requires_grad_(True))
    else:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return call


def check_backend(backend: Backend, circuit: Circuit, x: torch.Tensor, weights: torch.Tensor) -> dict:
    """Compare a backend's outputs and input gradients with hqnn's plain float64 gate-by-gate run.

    Returns:
        ``{"max_abs_diff": float, "max_abs_grad_diff": float, "ok": bool}`` (``ok``: both within 1e-4).
    """
    xr = x.double().requires_grad_(True)
    ref = run(circuit, xr, weights.double(), method="gates")
    (ref_grad,) = torch.autograd.grad(ref.sum(), xr)
    xb = x.to(backend.device).requires_grad_(True)
    out = backend.module(xb)
    (grad,) = torch.autograd.grad(out.sum(), xb)
    diff = (out.detach().cpu().double() - ref.detach()).abs().max().item()
    grad_diff = (grad.cpu().double() - ref_grad).abs().max().item()
    return {"max_abs_diff": diff, "max_abs_grad_diff": grad_diff,
            "ok": bool(diff <= CHECK_ATOL and grad_diff <= CHECK_ATOL)}


def check_failure(check: dict) -> str:
    """Why a backend failed its check, in one line."""
    if check.get("error"):
        return check["error"][:300]
    return (f"outputs differ from the reference by {check['max_abs_diff']:.2e} "
            f"(gradients {check['max_abs_grad_diff']:.2e})")


def build_and_check(backend_name: str, case: CircuitCase, circuit: Circuit, weights: torch.Tensor,
                    x: torch.Tensor, device: str) -> tuple[Backend | None, dict]:
    """Build a backend and check it on ``x``; a backend that cannot build or run the circuit gives
    ``(None, check)`` with ``check["error"]`` saying why."""
    try:
        backend = make_backend(backend_name, case, circuit, weights, device)
        return backend, check_backend(backend, circuit, x, weights)
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


def time_config(backend: Backend, x: torch.Tensor, mode: str, settings: Settings,
                skip: str | None = None) -> dict:
    """Time one configuration; returns ``{ms, ms_min, n_calls, peak_mb, status, reason, load_avg_1m}``
    (the load average says whether other work on the machine skewed the timing)."""
    if skip:
        return empty_record("skipped", skip)
    try:
        t = measure(step(backend, x, mode), repeats=settings.repeats, budget_s=settings.budget_s,
                    device=backend.device)
    except (RuntimeError, MemoryError) as exc:  # out of memory, a backend's own failure
        log.warning("%s %s failed: %s", backend.name, mode, exc)
        return empty_record("failed", f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}")
    return {"ms": round(t.ms, 4), "ms_min": round(t.ms_min, 4), "n_calls": t.n_calls, "peak_mb": t.peak_mb,
            "status": "ok", "reason": None, "load_avg_1m": round(os.getloadavg()[0], 2)}
