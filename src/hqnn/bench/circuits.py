"""The circuits suite: the seed systems' circuits on every backend, batch sizes and both modes.

Before timing, each backend's outputs and the gradients with respect to the inputs and the weights are
checked against hqnn's plain float64 simulation (a benchmark of a wrong computation is worthless); a
backend that disagrees is recorded as failed and not timed, one whose package is absent as skipped.
Larger batches of a (circuit, backend, mode) are skipped once a smaller one
predicts more than the per-call limit or the free memory.
"""

from __future__ import annotations

import logging

import torch

from hqnn.bench.backends import BACKENDS, CircuitCase
from hqnn.bench.harness import (
    MODES,
    Settings,
    build_and_check,
    check_failure,
    empty_record,
    make_inputs,
    make_weights,
    skip_reason,
    time_config,
)
from hqnn.exceptions import ConfigError

__all__ = ["BATCHES", "CIRCUITS", "CIRCUIT_BACKENDS", "NOISY_BACKENDS", "NOISY_BATCHES", "NOISY_CIRCUITS",
           "run_circuits"]

log = logging.getLogger(__name__)

CIRCUITS = {
    c.name: c
    for c in (
        CircuitCase("rezk_qnn", "rezk_qnn", (4,)),
        CircuitCase("hcqdl_crx_ring", "hcqdl_crx_ring", (4,)),
        CircuitCase("diana_qhead4", "diana_qhead", (4, 2)),
        CircuitCase("diana_qhead8", "diana_qhead", (8, 2)),
        CircuitCase("sqdr_reupload9", "sqdr_reupload", (9, 2)),
        CircuitCase("strongly_entangling12x4", "strongly_entangling", (12, 4)),
    )
}
NOISY_CIRCUITS = {
    c.name: c
    for c in (
        CircuitCase("sqdr_reupload_noisy4", "sqdr_reupload_noisy", (4, 2)),
        CircuitCase("sqdr_reupload_noisy9", "sqdr_reupload_noisy", (9, 2)),
    )
}
CIRCUIT_BACKENDS = tuple(b for b in BACKENDS if b != "pennylane-mixed")  # the peers included
NOISY_BACKENDS = ("hqnn", "pennylane-mixed")
BATCHES = (1, 16, 64, 256, 1024)
NOISY_BATCHES = (1, 16, 64, 256)
CHECK_BATCH = 3


def run_circuits(circuits: list[str], backends: list[str], batches: list[int], settings: Settings,
                 modes: tuple[str, ...] = MODES, table: dict[str, CircuitCase] = CIRCUITS) -> dict:
    """Check, then time, every (circuit, backend, batch, mode).

    Args:
        circuits: names from ``table``.
        backends: names from :data:`hqnn.bench.backends.BACKENDS`.
        batches: batch sizes, timed in increasing order.
        settings: timing settings.
        modes: "forward" and/or "forward+backward".
        table: the circuits by name: :data:`CIRCUITS` or :data:`NOISY_CIRCUITS`.

    Returns:
        ``{"checks": [...], "results": [...]}``: one check per (circuit, backend), one result per
        configuration ``{circuit, backend, batch, mode, ms, ms_min, n_calls, peak_mb, status, reason}``.

    Raises:
        ConfigError: an unknown circuit name.
    """
    unknown = [c for c in circuits if c not in table]
    if unknown:
        raise ConfigError(f"unknown circuits {unknown}; valid: {', '.join(table)}")
    checks, results = [], []
    for name in circuits:
        case = table[name]
        circuit = case.build()
        weights = make_weights(circuit, settings.seed)
        for backend_name in backends:
            backend, check = build_and_check(backend_name, case, circuit, weights,
                                             make_inputs(circuit, CHECK_BATCH, settings.seed), settings.device)
            checks.append({"circuit": name, "backend": backend_name, **check})
            if check.get("skipped"):  # its package is not installed: the check row says so, no timing rows
                continue
            log.info("%s / %s: check %s", name, backend_name, "ok" if check["ok"] else f"FAILED {check}")
            for mode in modes:
                previous, previous_batch = None, None
                for batch in sorted(batches):
                    if check["ok"]:
                        skip = skip_reason(previous, batch / previous_batch if previous_batch else 1.0, settings)
                        record = time_config(backend, make_inputs(circuit, batch, settings.seed), mode, settings,
                                             skip)
                    else:
                        record = empty_record("failed", check_failure(check))
                    record = {"circuit": name, "backend": backend_name, "batch": batch, "mode": mode, **record}
                    log.info("%-24s %-20s B=%-5d %-17s %s", name, backend_name, batch, mode,
                             f"{record['ms']:.3f} ms" if record["ms"] is not None else record["reason"])
                    results.append(record)
                    previous, previous_batch = record, batch
            del backend
            if settings.device.startswith("cuda"):
                torch.cuda.empty_cache()
    return {"checks": checks, "results": results}
