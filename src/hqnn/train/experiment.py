"""Run an experiment: prepare the run directory and the data once, train the model and, with
``train.compare``, its classical twin on the same split, seed and batches, and report both side by
side, so that what the quantum part adds (or does not) is measured rather than claimed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hqnn.exceptions import ConfigError
from hqnn.models import list_models
from hqnn.train.checkpoint import write_json
from hqnn.train.config import ExperimentConfig
from hqnn.train.loaders import build_data
from hqnn.train.rundir import prepare_run_dir
from hqnn.train.trainer import FitResult, Trainer, resolve_device

__all__ = ["ExperimentResult", "run_experiment", "twin_name", "comparison_table"]

log = logging.getLogger(__name__)


@dataclass
class ExperimentResult:
    """The run directory and one :class:`FitResult` per model trained (the config's model first)."""

    run_dir: Path
    results: list[FitResult]


def twin_name(config: ExperimentConfig) -> str:
    """The classical twin of the config's model: ``model.twin``, else ``<model>_classical``.

    Raises:
        ConfigError: no twin is registered.
    """
    name = config.model.twin or f"{config.model.name}_classical"
    if name not in list_models():
        raise ConfigError(
            f"train.compare needs a classical twin of {config.model.name!r}; {name!r} is not a registered "
            "model: set model.twin to one from `hqnn models`"
        )
    return name


def run_experiment(config: ExperimentConfig) -> ExperimentResult:
    """Train what ``config`` describes and write the run directory (see :mod:`hqnn.train.rundir`).

    Args:
        config: the resolved config.

    Returns:
        The :class:`ExperimentResult`.

    Raises:
        ConfigError: bad config (unknown model, no twin, resume mismatch).
        DataError: the data cannot be loaded.
        KeyboardInterrupt: after the interrupted model's last good checkpoint is secured.
    """
    names = [config.model.name] + ([twin_name(config)] if config.train.compare else [])
    device = resolve_device(config.train.device)
    run_dir = prepare_run_dir(config, str(device))
    log.info("run directory: %s", run_dir)
    data = build_data(config.data, config.run.out_dir, progress=config.run.progress)
    results = [Trainer(config, data, name, run_dir / name).fit() for name in names]
    write_json([r.as_dict() for r in results], run_dir / "comparison.json")
    return ExperimentResult(run_dir, results)


def comparison_table(results: list[FitResult]) -> str:
    """A fixed-width table: model, parameters (quantum), best epoch, val and test accuracy/F1, time."""
    header = (
        f"{'model':<28} {'params':>10} {'quantum':>7} {'best ep':>7} {'val acc':>7} {'val f1':>7} "
        f"{'test acc':>8} {'test f1':>7} {'train s':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.model_name:<28} {r.n_params:>10,} {r.n_quantum_params:>7} {r.best_epoch:>7} {r.val['accuracy']:>7.4f} "
            f"{r.val['f1']:>7.4f} {r.test['accuracy']:>8.4f} {r.test['f1']:>7.4f} {r.seconds:>7.1f}"
        )
    return "\n".join(lines)
