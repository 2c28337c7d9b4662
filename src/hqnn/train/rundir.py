"""The run directory: what a run ran (resolved config, seed, versions) and what it measured.

Layout::

    <out_dir>/<run name>/
        config.yaml          the resolved config (``hqnn train <run>/config.yaml`` reruns it)
        environment.json     seed, versions of python/torch/numpy/hqnn/scikit-learn, machine, command
        comparison.json      the side-by-side summary of every model trained
        <model name>/
            checkpoint.pt    the last finished epoch (resume state), replaced atomically
            metrics.csv      one row per epoch: phase, lr, train_* and val_* metrics, seconds,
                             samples_per_s, circuit diagnostics
            metrics.json     the same rows as JSON
            model.pt         the selected (best validation) weights, builder arguments, config, at the end
            summary.json     best epoch, validation and test metrics (+ full test report), parameter
                             counts, training time, simulator method, diagnostics warnings
            test_predictions.npz  test labels, predictions and class probabilities of the kept weights
            tensorboard/     TensorBoard event files (run.tensorboard, when tensorboard is installed)
    <out_dir>/splits/        split files shared by runs with the same split settings
"""

from __future__ import annotations

import csv
import dataclasses
import io
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hqnn.exceptions import ConfigError
from hqnn.train.checkpoint import atomic_write, write_json
from hqnn.train.config import ExperimentConfig, config_from_dict, config_to_dict, dump_yaml, load_yaml

__all__ = ["choose_run_dir", "prepare_run_dir", "environment", "write_history", "RESUME_INSENSITIVE"]

# keys that may differ between a run and its resumption (train.epochs: a larger value extends the run)
RESUME_INSENSITIVE = {
    ("run", "resume"), ("run", "progress"), ("run", "name"), ("run", "tensorboard"), ("train", "epochs"),
    ("train", "diagnostics"),
}


def environment(config: ExperimentConfig, device: str) -> dict[str, Any]:
    """Seed, package versions, machine and command line of this process."""
    import numpy
    import torch

    import hqnn

    try:
        import sklearn

        sklearn_version = sklearn.__version__
    except ImportError:  # pragma: no cover - a declared dependency
        sklearn_version = None
    return {
        "seed": config.run.seed,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "hqnn": hqnn.__version__,
            "scikit-learn": sklearn_version,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "threads": config.train.threads or torch.get_num_threads(),
        },
        "device": device,
        "command": sys.argv,
    }


def _differences(saved: ExperimentConfig, current: ExperimentConfig) -> list[str]:
    old, new = config_to_dict(saved), config_to_dict(current)
    keys = []
    for section, values in new.items():
        if not isinstance(values, dict):
            keys += [section] if values != old.get(section) else []
            continue
        keys += [
            f"{section}.{k}" for k, v in values.items()
            if (section, k) not in RESUME_INSENSITIVE and v != old[section].get(k)
        ]
    return keys


def choose_run_dir(config: ExperimentConfig) -> Path:
    """The directory a fresh run of ``config`` goes to: ``<out_dir>/<name>``, or ``<name>-2``,
    ``<name>-3``, ... when that holds files. Nothing is created."""
    base = Path(config.run.out_dir) / (config.run.name or config.preset)
    run_dir, index = base, 1
    while run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        index += 1
        run_dir = base.with_name(f"{base.name}-{index}")
    return run_dir


def prepare_run_dir(config: ExperimentConfig, device: str, run_dir: Path | None = None) -> Path:
    """Create (or, with ``run.resume``, reopen) the run directory and write what the run runs.

    A fresh run never overwrites an earlier one: when ``<out_dir>/<name>`` holds files, the run
    goes to ``<name>-2``, ``<name>-3``, ... A resumed run must have the same config as the saved
    one apart from the keys in :data:`RESUME_INSENSITIVE`; a new ``train.epochs`` (the run is
    extended) is written into the saved ``config.yaml``.

    Args:
        config: the resolved config.
        device: the device the run uses (recorded in ``environment.json``).
        run_dir: for a fresh run, the directory to create (default: :func:`choose_run_dir`).

    Returns:
        The run directory.

    Raises:
        ConfigError: resuming a directory without ``config.yaml``, or with a different config.
    """
    base = Path(config.run.out_dir) / (config.run.name or config.preset)
    if config.run.resume:
        saved_file = base / "config.yaml"
        if not saved_file.is_file():
            raise ConfigError(f"cannot resume: {saved_file} does not exist (set run.name to the run to resume)")
        saved = config_from_dict(load_yaml(saved_file))
        changed = _differences(saved, config)
        if changed:
            raise ConfigError(
                f"cannot resume {base}: the config differs from the saved one in {', '.join(changed)}; "
                "resume with the same settings, or start a new run"
            )
        if saved.train.epochs != config.train.epochs:
            extended = dataclasses.replace(saved, train=dataclasses.replace(saved.train, epochs=config.train.epochs))
            atomic_write(saved_file, lambda tmp: dump_yaml(extended, tmp))
        return base
    run_dir = run_dir or choose_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / "config.yaml", lambda tmp: dump_yaml(config, tmp))
    write_json(environment(config, device), run_dir / "environment.json")
    return run_dir


def write_history(history: list[dict[str, Any]], model_dir: Path) -> None:
    """Write the per-epoch rows to ``metrics.json`` and ``metrics.csv`` (both replaced atomically).
    The CSV columns are every key of any row, in order of first appearance (rows of a resumed run
    may have more keys than the earlier ones); a row without one leaves its cell empty."""
    write_json(history, model_dir / "metrics.json")
    if not history:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for row in history for k in row)), restval="")
    writer.writeheader()
    writer.writerows(history)
    atomic_write(model_dir / "metrics.csv", lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))
