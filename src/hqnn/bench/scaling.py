"""The scaling sweep: strongly entangling circuits (AngleEmbedding + L layers) over qubits x layers.

Batch 64 up to 14 qubits, 1 above; forward+backward by default. A size is skipped when a smaller
one (fewer layers, or two qubits fewer at 4x the cost) predicts more than the per-call limit or the
free memory. :func:`plot_scaling` draws milliseconds per sample against qubits, one line per depth.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hqnn.bench.backends import CircuitCase, make_backend
from hqnn.bench.harness import (
    Settings,
    build_and_check,
    check_failure,
    make_inputs,
    make_weights,
    skip_reason,
    time_config,
)
from hqnn.bench.timing import track_live_memory

__all__ = ["LAYERS", "MEMORY_BATCHES", "MEMORY_LAYERS", "QUBITS", "plot_scaling", "run_memory", "run_scaling",
           "scaling_batch"]

log = logging.getLogger(__name__)

QUBITS = tuple(range(2, 21, 2))
LAYERS = tuple(range(1, 9))
CHECK_MAX_QUBITS = 12  # above, the float64 reference costs more than the sweep itself


def scaling_batch(n_qubits: int) -> int:
    """The batch of the sweep at ``n_qubits``: 64 up to 14 qubits, 1 above."""
    return 1 if n_qubits > 14 else 64


def run_scaling(qubits: list[int], layers: list[int], backends: list[str], settings: Settings,
                mode: str = "forward+backward") -> dict:
    """Time ``strongly_entangling(n, L)`` for every n in ``qubits`` and L in ``layers`` on each backend.

    Returns:
        ``{"checks": [...], "results": [...]}``; results carry ``n_qubits`` and ``n_layers`` too.
    """
    checks, results = [], []
    for backend_name in backends:
        done: dict[tuple[int, int], dict] = {}
        for n in sorted(qubits):
            batch = scaling_batch(n)
            for n_layers in sorted(layers):
                case = CircuitCase(f"strongly_entangling({n},{n_layers})", "strongly_entangling", (n, n_layers))
                circuit = case.build()
                reasons = []
                smaller_depth = [lp for lp in done if lp[0] == n]
                if smaller_depth:
                    lp = max(smaller_depth)
                    reasons.append(skip_reason(done[lp], n_layers / lp[1], settings))
                if (n - 2, n_layers) in done:
                    reasons.append(skip_reason(done[(n - 2, n_layers)], 4 * batch / scaling_batch(n - 2), settings))
                skip = next((r for r in reasons if r), None)
                backend = None
                if not skip:
                    weights = make_weights(circuit, settings.seed)
                    if n <= CHECK_MAX_QUBITS:
                        backend, check = build_and_check(backend_name, case, circuit, weights,
                                                         make_inputs(circuit, 2, settings.seed), settings.device)
                        checks.append({"circuit": case.name, "backend": backend_name, **check})
                        skip = None if check["ok"] else check_failure(check)
                    else:
                        backend = make_backend(backend_name, case, circuit, weights, settings.device)
                x = make_inputs(circuit, batch, settings.seed)
                record = time_config(backend, x, mode, settings, skip)
                record = {"circuit": case.name, "backend": backend_name, "batch": batch, "mode": mode,
                          "n_qubits": n, "n_layers": n_layers, **record}
                log.info("%-28s %-12s B=%-3d %s", case.name, backend_name, batch,
                         f"{record['ms']:.3f} ms" if record["ms"] is not None else record["reason"])
                results.append(record)
                done[(n, n_layers)] = record
    return {"checks": checks, "results": results}


MEMORY_LAYERS = (1, 2, 4, 8)
MEMORY_BATCHES = (64, 256, 1024)


def run_memory(n_qubits: int, backends: list[str], settings: Settings, layers=MEMORY_LAYERS,
               batches=MEMORY_BATCHES) -> dict:
    """Peak memory of forward+backward of ``strongly_entangling(n_qubits, L)``: over depth at the
    largest batch, and over batch at the deepest circuit. Rows carry ``state_mb`` (one statevector
    of the batch in complex64) so that the peak reads as a number of states."""
    track_live_memory()
    results = []
    configs = [(max(batches), L) for L in layers] + [(b, max(layers)) for b in batches if b != max(batches)]
    for backend_name in backends:
        for batch, n_layers in configs:
            case = CircuitCase(f"strongly_entangling({n_qubits},{n_layers})", "strongly_entangling",
                               (n_qubits, n_layers))
            circuit = case.build()
            backend = make_backend(backend_name, case, circuit, make_weights(circuit, settings.seed), settings.device)
            record = time_config(backend, make_inputs(circuit, batch, settings.seed), "forward+backward", settings)
            state_mb = batch * 2**n_qubits * 8 / 2**20
            results.append({"circuit": case.name, "backend": backend_name, "batch": batch, "mode": "forward+backward",
                            "n_qubits": n_qubits, "n_layers": n_layers, "state_mb": state_mb, **record})
            log.info("%-28s %-12s B=%-5d peak %s MB (one state: %.1f MB)", case.name, backend_name, batch,
                     record["peak_mb"], state_mb)
    return {"checks": [], "results": results}


def plot_scaling(results: list[dict], png: str | Path) -> Path:
    """Plot ms per sample against qubits (log scale), one line per (backend, layers); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    backends = list(dict.fromkeys(r["backend"] for r in results))
    styles = ["-", "--", ":", "-."]
    for b_index, backend in enumerate(backends):
        for n_layers in sorted({r["n_layers"] for r in results if r["backend"] == backend}):
            pts = sorted((r["n_qubits"], r["ms"] / r["batch"]) for r in results
                         if r["backend"] == backend and r["n_layers"] == n_layers and r["ms"] is not None)
            if pts:
                ax.plot(*zip(*pts), styles[b_index % len(styles)], marker="o", markersize=3,
                        label=f"{backend}, L={n_layers}")
    ax.set_yscale("log")
    ax.set_xlabel("qubits (batch 64 up to 14 qubits, 1 above)")
    ax.set_ylabel(f"ms per sample ({', '.join(sorted({r['mode'] for r in results}))})")
    ax.set_title("strongly entangling layers: time per sample")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png
