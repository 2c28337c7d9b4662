"""``hqnn bench``: run a benchmark suite and write its JSON report (and print its table).

    hqnn bench circuits --json benchmarks/results/circuits_cpu.json [--quick] [--batches 1,16,64]
                        [--backends hqnn,pergate-torch] [--circuits rezk_qnn] [--threads 2] [--repeats 5]
    hqnn bench scaling  --json benchmarks/results/scaling_cpu.json --png benchmarks/results/scaling_cpu.png
    hqnn bench noise    --json benchmarks/results/noise_cpu.json
    hqnn bench memory   --json benchmarks/results/memory_cpu.json
    hqnn bench train    --json benchmarks/results/train_cpu.json [--models hcqdl,sqdr_cnn] [--threads 2]

Re-running part of a suite into an existing file replaces those rows and keeps the rest (``--fresh``
starts over).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_arguments", "run"]

QUICK = {"repeats": 3, "budget_s": 1.0, "max_call_s": 5.0}


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", required=True, help="where to write the JSON report")
    p.add_argument("--quick", action="store_true", help="fewer sizes, repeats and seconds (a smoke run)")
    p.add_argument("--backends", type=_names, default=None, help="comma-separated backends (default: all installed)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed samples per configuration at most, each >= 20 ms of back-to-back calls (default 5)")
    p.add_argument("--budget", type=float, default=5.0, help="seconds per configuration (default 5)")
    p.add_argument("--max-call", type=float, default=20.0,
                   help="skip configurations predicted to take longer per call (seconds, default 20)")
    p.add_argument("--device", default="cpu", help="device of the hqnn and per-gate backends (cpu or cuda)")
    p.add_argument("--fresh", action="store_true", help="overwrite the JSON file instead of merging into it")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="suite", metavar="SUITE", required=True)
    for name, help_text, batches in (
        ("circuits", "the seed circuits on every backend, batch and mode", "1,16,64,256,1024"),
        ("noise", "the noisy SQDR circuit (density matrices) against PennyLane default.mixed", "1,16,64,256"),
    ):
        p = sub.add_parser(name, help=help_text)
        _common(p)
        p.add_argument("--batches", type=_ints, default=None, help=f"comma-separated batch sizes (default {batches})")
        p.add_argument("--circuits", type=_names, default=None, help="comma-separated circuit names (default: all)")
        p.add_argument("--modes", type=_names, default=None, help="forward and/or forward+backward (default both)")
    p = sub.add_parser("scaling", help="strongly entangling circuits over qubits x layers, plotted")
    _common(p)
    p.add_argument("--png", default=None, help="where to draw the plot (default: the JSON path with .png)")
    p.add_argument("--qubits", type=_ints, default=None, help="comma-separated qubit counts (default 2,4,...,20)")
    p.add_argument("--layers", type=_ints, default=None, help="comma-separated layer counts (default 1..8)")
    p = sub.add_parser("memory", help="peak memory of forward+backward over depth and batch")
    _common(p)
    p.add_argument("--qubits", dest="qubits_memory", type=int, default=10, help="register size (default 10)")
    p = sub.add_parser("train", help="samples/s of whole training steps: the trainer's path vs eager PyTorch")
    _common(p)
    p.add_argument("--models", type=_names, default=None,
                   help="comma-separated seed models (default: hcqdl,sqdr_cnn,sqdr_cnn_noisy,cnn_qnn)")


def _validate(args: argparse.Namespace) -> None:
    """Refuse bad sizes, a missing CUDA device and unusable output files before anything runs.

    Raises:
        ConfigError: naming the option, what it must be and what was given.
    """
    import json
    import math

    import torch

    from hqnn.exceptions import ConfigError
    from hqnn.train.experiment import check_output_folder

    for option, value in (("--threads", args.threads), ("--repeats", args.repeats),
                          ("--qubits", getattr(args, "qubits_memory", None))):
        if value is not None and value < 1:
            raise ConfigError(f"{option} must be a positive integer; got {value}")
    if not (math.isfinite(args.budget) and args.budget >= 0):  # 0: the fewest calls that give `repeats` samples
        raise ConfigError(f"--budget must be a finite number of seconds >= 0; got {args.budget}")
    if not (math.isfinite(args.max_call) and args.max_call > 0):
        raise ConfigError(f"--max-call must be a positive number of seconds; got {args.max_call}")
    for option in ("batches", "qubits", "layers"):
        values = getattr(args, option, None)
        if values is not None and any(v < 1 for v in values):
            raise ConfigError(f"--{option} must list positive integers; got {','.join(map(str, values))}")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        raise ConfigError(f"--device must be cpu or cuda; got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device} but torch sees no CUDA device; use --device cpu")
    for option, value in (("--json", args.json), ("--png", getattr(args, "png", None))):
        if value is not None:
            path = Path(value)
            if path.is_dir():
                raise ConfigError(f"{option} must be a file path; got {path}, which is a folder")
            check_output_folder(path.parent, f"the folder of {option} {path}")
    path = Path(args.json)
    if path.exists() and not args.fresh:
        try:
            json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"--json {path} exists but cannot be read as a report ({type(exc).__name__}); it is not "
                "overwritten: pass --fresh to replace it, or choose another path"
            ) from exc


def run(args: argparse.Namespace) -> int:
    _validate(args)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # lightning's OpenMP threads
    if args.threads == 1:  # XLA (TensorCircuit's JAX) uses every core unless told before jax is imported
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import torch

    from hqnn.bench import report as rep
    from hqnn.bench.backends import BACKENDS, available_backends
    from hqnn.bench.harness import MODES, Settings, check_failure
    from hqnn.bench.peers import PEER_PACKAGES
    from hqnn.bench.timing import machine_info, versions
    from hqnn.exceptions import ConfigError

    torch.set_num_threads(args.threads)
    if args.suite == "train":
        return _run_train(args)
    settings = Settings(repeats=args.repeats, budget_s=args.budget, max_call_s=args.max_call, threads=args.threads,
                        device=args.device)
    if args.quick:
        settings = Settings(**{**settings.as_dict(), **QUICK, "repeats": min(args.repeats, QUICK["repeats"])})
    for given, valid, what in ((args.backends or [], BACKENDS, "backends"),
                               (getattr(args, "modes", None) or [], MODES, "modes")):
        if set(given) - set(valid):
            raise ConfigError(f"unknown {what} {sorted(set(given) - set(valid))}; valid: {', '.join(valid)}")
    previous = None if args.fresh else rep.read_report(args.json)

    def save(out: dict) -> dict:
        report = rep.new_report(args.suite, machine_info(args.device), versions(), settings.as_dict(),
                                out["checks"], out["results"])
        report = rep.merge_reports(previous, report)
        report["ratios"] = rep.speedups(report["results"])
        rep.write_report(args.json, report)
        return report

    if args.suite == "memory":
        from hqnn.bench.scaling import run_memory

        report = save(run_memory(args.qubits_memory, args.backends or ["hqnn", "hqnn-engine", "hqnn-gates"], settings))
        out: dict[str, list] = {"checks": []}
    elif args.suite == "scaling":
        from hqnn.bench.scaling import LAYERS, QUBITS, plot_scaling, run_scaling

        qubits = args.qubits or ([2, 4, 6, 8] if args.quick else list(QUBITS))
        layers = args.layers or ([1, 2, 4] if args.quick else list(LAYERS))
        out = run_scaling(qubits, layers, args.backends or ["hqnn"], settings)
        report = save(out)
    else:
        from hqnn.bench import circuits as suite

        noise = args.suite == "noise"
        table = suite.NOISY_CIRCUITS if noise else suite.CIRCUITS
        batches = args.batches or ([1, 16] if args.quick else list(suite.NOISY_BATCHES if noise else suite.BATCHES))
        installed = available_backends()
        if noise:
            backends = args.backends or [b for b in installed if b in suite.NOISY_BACKENDS]
        else:  # absent peers are kept: their check rows say why they were skipped
            backends = args.backends or [b for b in suite.CIRCUIT_BACKENDS if b in installed or b in PEER_PACKAGES]
        out = {"checks": [], "results": []}
        for name in args.circuits or list(table):  # saved after each circuit: an interrupted run keeps its rows
            part = suite.run_circuits([name], backends, batches, settings, tuple(args.modes or MODES), table=table)
            out = {key: out[key] + part[key] for key in out}
            report = save(out)
    print(rep.markdown_table(report))
    peers = rep.peer_table(report) if args.suite == "circuits" else ""
    if peers:
        print("\nhqnn against the fastest peer (the peer's ms / hqnn's ms; above 1: hqnn is faster):\n" + peers)
    print(f"\nwrote {args.json}")
    if args.suite == "scaling":
        png = plot_scaling(report["results"], args.png or Path(args.json).with_suffix(".png"))
        print(f"wrote {png}")
    for c in out["checks"]:
        if c.get("skipped"):
            print(f"SKIPPED: {c['circuit']} / {c['backend']}: {c['skipped']}")
    failed = [c for c in out["checks"] if not c["ok"] and not c.get("skipped")]
    for c in failed:
        print(f"CHECK FAILED: {c['circuit']} / {c['backend']}: {check_failure(c)}")
    return 1 if failed else 0


def _run_train(args: argparse.Namespace) -> int:
    """``hqnn bench train``: both paths of every model, merged into the report by (model, path)."""
    from hqnn.bench import report as rep
    from hqnn.bench.timing import machine_info, versions
    from hqnn.bench.train import run_train_bench, train_ratios, train_table

    repeats, budget = args.repeats, args.budget
    if args.quick:
        repeats, budget = min(repeats, QUICK["repeats"]), QUICK["budget_s"]
    min_sample_s = max(budget / (2 * repeats), 0.05)  # both paths' samples share the budget
    machine = machine_info(args.device)
    out = run_train_bench(args.models, repeats, min_sample_s, args.device, log=print)
    machine["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    previous = None if args.fresh else rep.read_report(args.json)
    results = out["results"]
    if previous and previous.get("suite") == "train" and previous.get("machine", {}).get("cpu") == machine["cpu"]:
        fresh = {(r["model"], r["path"]) for r in results}
        results = [r for r in previous["results"] if (r["model"], r["path"]) not in fresh] + results
    settings = {"threads": args.threads, "repeats": repeats, "min_sample_s": round(min_sample_s, 3),
                "device": args.device}
    report = rep.new_report("train", machine, versions(), settings, [], results)
    report["ratios"] = train_ratios(results)
    rep.write_report(args.json, report)
    print(train_table(report))
    print(f"\nwrote {args.json}")
    return 0
