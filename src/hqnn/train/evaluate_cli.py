"""``hqnn evaluate MODEL_OR_RUN``: score a trained model (or each model of a run) on its run's own
split or on any supported dataset, and, for hybrids, with the circuit under finite shots or noise.

Examples::

    hqnn evaluate runs/digits_cnn_qnn                          # every model of the run, its test split
    hqnn evaluate runs/digits_cnn_qnn/cnn_qnn/model.pt --split val
    hqnn evaluate runs/mnist_sqdr/sqdr_cnn --data mnist --path /data/mnist --split test --json eval.json
    hqnn evaluate runs/digits_cnn_qnn/cnn_qnn --shots 10,100,1000 --noise depolarizing=0.01,0.05
    hqnn evaluate runs/digits_cnn_qnn/cnn_qnn --noise amplitude_damping=0.05 --noise readout=0.02:0.05
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hqnn.exceptions import ConfigError

__all__ = ["NOISE_CHANNELS", "add_arguments", "run", "parse_shots", "parse_noise", "check_output_path",
           "write_output", "format_report", "format_robustness"]

# --noise channel names (hqnn.sim.channels aliases), inserted after every gate on every wire it touches
NOISE_CHANNELS = ("depolarizing", "bit_flip", "phase_flip", "amplitude_damping", "phase_damping",
                  "generalized_amplitude_damping", "thermal_relaxation")
_NOISE_HELP = (
    "circuit noise settings CHANNEL=S[,S...]: each strength one setting, a channel's several strengths "
    "joined by ':' (generalized_amplitude_damping=0.1:0.2, thermal_relaxation=0.1:50:40:1); channels: "
    f"{', '.join(NOISE_CHANNELS)} (after every gate, on every wire it touches) and readout=P or P01:P10; repeatable"
)


def parse_shots(text: str) -> list[int]:
    """``"10,100,1000"`` -> ``[10, 100, 1000]``.

    Raises:
        ConfigError: an entry that is not a whole number >= 1, or no entry at all.
    """
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() and int(item) >= 1 for item in items):
        raise ConfigError(f"--shots must be whole numbers >= 1, comma-separated, e.g. 10,100,1000; got {text!r}")
    return [int(item) for item in items]


def _strengths(text: str, spec: str) -> tuple[float, ...]:
    import math

    try:
        values = tuple(float(v) for v in text.split(":"))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--noise {spec!r}: strengths must be finite numbers (several joined by ':'); got {text!r}")
    return values


def parse_noise(spec: str) -> list:
    """``"depolarizing=0.01,0.05"`` -> one :class:`~hqnn.train.inference.CircuitSetting` per strength.

    Raises:
        ConfigError: not ``CHANNEL=STRENGTHS``, an unknown channel, or a strength that is not a number.
        ValueRangeError: the wrong number of strengths for the channel, or one out of its range.
    """
    from hqnn.sim.noise import NoiseModel
    from hqnn.train.inference import CircuitSetting

    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise ConfigError(
            f"--noise is written CHANNEL=STRENGTH[,STRENGTH...], e.g. depolarizing=0.01,0.05; got {spec!r}"
        )
    if name.lower() not in (*NOISE_CHANNELS, "readout"):
        raise ConfigError(f"--noise: unknown channel {name!r}; choose one of {', '.join(NOISE_CHANNELS)}, readout")
    settings = []
    for text in values.split(","):
        strengths = _strengths(text.strip(), spec)
        if name.lower() == "readout":
            if len(strengths) not in (1, 2) or not all(0.0 <= p <= 1.0 for p in strengths):
                raise ConfigError(f"--noise readout=P or P01:P10 with probabilities in [0, 1]; got {text!r}")
            model = NoiseModel().add_readout_error(strengths[0], strengths[-1])
        else:
            model = NoiseModel().add(name.lower(), *strengths)
        settings.append(CircuitSetting(f"{name}={text.strip()}", noise=model))
    return settings


def check_output_path(path: Path | None, flag: str) -> None:
    """Refuse, before any work, an output file that could not be written.

    Raises:
        ConfigError: a folder, a missing parent folder, or one without write permission.
    """
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if (path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK)
            or (path.exists() and not os.access(path, os.W_OK))):
        raise ConfigError(f"{flag} {path}: cannot write there (expected a file in an existing, writable folder)")


def write_output(path: Path, text: str, flag: str) -> None:
    """Write ``text`` to ``path`` atomically.

    Raises:
        ConfigError: the write failed.
    """
    from hqnn.train.checkpoint import atomic_write

    try:
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write ({exc.strerror or exc})") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL_OR_RUN", type=Path,
                        help="a model.pt, a model folder (runs/<run>/<model>), or a run or study folder "
                             "(every model.pt below it)")
    parser.add_argument("--data", metavar="NAME",
                        help="evaluate on this registered dataset (default: the run's own data)")
    parser.add_argument("--path", type=Path, help="dataset files (default: the run's, for its own dataset)")
    parser.add_argument("--split", help="train, val or test of the run's data (default test); with --data/--path, "
                        "a split of that dataset (default its test split)")
    parser.add_argument("--shots",
                        help="also evaluate with the circuit sampled with these shot counts, e.g. 10,100,1000")
    parser.add_argument("--noise", action="append", default=[], metavar="CHANNEL=S,...", help=_NOISE_HELP)
    parser.add_argument("--seed", type=int, default=0, help="seed of the shot sampling (default 0)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"),
                        help="where to run (default: the run's train.device)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the full report as JSON")


def _scores_line(report: dict[str, Any]) -> str:
    auc = "n/a" if report["roc_auc_ovr"] is None else f"{report['roc_auc_ovr']:.4f}"
    return (f"accuracy {report['accuracy']:.4f}  balanced accuracy {report['balanced_accuracy']:.4f}  "
            f"precision {report['precision']:.4f}  recall {report['recall']:.4f}  f1 {report['f1']:.4f}  "
            f"roc-auc (ovr) {auc}  loss {report['loss']:.4f}")


def format_report(report: dict[str, Any], max_confusion: int = 20) -> str:
    """The scores, the per-class table and (up to ``max_confusion`` classes) the confusion matrix."""
    width = max(5, *(len(row["class"]) for row in report["per_class"]))
    lines = [_scores_line(report), "", f"{'class':<{width}}  precision  recall      f1  support"]
    lines += [f"{row['class']:<{width}}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  {row['f1']:>6.4f}  "
              f"{row['support']:>7}"
              for row in report["per_class"]]
    confusion, names = report["confusion"], [row["class"] for row in report["per_class"]]
    if len(names) > max_confusion:
        lines += ["", f"confusion matrix: {len(names)} x {len(names)}, in the --json report"]
        return "\n".join(lines)
    cell = max(4, *(len(str(v)) + 1 for r in confusion for v in r), *(len(n) + 1 for n in names))
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * width + "".join(f"{n:>{cell}}" for n in names)]
    lines += [f"{name:<{width}}" + "".join(f"{v:>{cell}}" for v in row) for name, row in zip(names, confusion)]
    return "\n".join(lines)


def format_robustness(rows: list[dict[str, Any]]) -> str:
    """Metric against circuit setting, one row each."""
    width = max(16, *(len(r["setting"]) for r in rows))
    lines = [f"{'circuit setting':<{width}}  accuracy  balanced acc      f1  roc-auc"]
    for r in rows:
        auc = "    n/a" if r["roc_auc_ovr"] is None else f"{r['roc_auc_ovr']:.4f}"
        lines.append(f"{r['setting']:<{width}}  {r['accuracy']:>8.4f}  {r['balanced_accuracy']:>12.4f}  "
                     f"{r['f1']:.4f}  {auc:>7}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from hqnn.models.arms import quantum_layers
    from hqnn.train.inference import CircuitSetting, evaluate, evaluation_data, find_models, load_trained, robustness

    settings = ([CircuitSetting(f"shots={n}", shots=n) for n in parse_shots(args.shots)]
                if args.shots is not None else [])
    for spec in args.noise:
        settings += parse_noise(spec)
    check_output_path(args.json, "--json")
    paths = find_models(args.model)
    entries = []
    for path in paths:
        trained = load_trained(path, device=args.device)
        if settings and not quantum_layers(trained.model) and len(paths) == 1:
            raise ConfigError(
                f"{path}: {trained.model_name} has no circuit layer; --shots and --noise apply to hybrids"
            )
        data, split = evaluation_data(trained, args.data, args.path, args.split)
        report = evaluate(trained, data, split)
        source = args.data or trained.config.data.name
        split_name = getattr(data, split).split
        print(f"{path}: {trained.model_name}{f' ({trained.arm} arm)' if trained.arm else ''} on {source}, "
              f"{split_name} split, {report['n_items']} items")
        print(format_report(report))
        entry = {"model": str(path), "model_name": trained.model_name, "arm": trained.arm,
                 "data": source, "split": split_name, **report}
        if settings:
            if quantum_layers(trained.model):
                entry["robustness"] = robustness(trained, data, split, [CircuitSetting("exact"), *settings],
                                                 seed=args.seed)
                print("\n" + format_robustness(entry["robustness"]))
            else:
                print(f"\n{trained.model_name} has no circuit layer: no shots/noise table")
        print()
        entries.append(entry)
    if args.json is not None:
        write_output(args.json, json.dumps({"models": entries}, indent=2) + "\n", "--json")
        print(f"wrote {args.json}")
    return 0
