"""Run an experiment: prepare the run directory and the data once, train the model and, with
``train.compare``, its classical twin on the same split, seed and batches, and report both side by
side, so that what the quantum part adds (or does not) is measured rather than claimed."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hqnn.exceptions import ConfigError, HQNNError
from hqnn.models import get_model_entry, list_models
from hqnn.train.checkpoint import CHECKPOINT_NAME, write_json
from hqnn.train.config import ExperimentConfig
from hqnn.train.distributed import broadcast_object, init_distributed
from hqnn.train.loaders import DataBundle, build_data
from hqnn.train.rundir import choose_run_dir, prepare_run_dir
from hqnn.train.trainer import FitResult, Trainer, resolve_device

__all__ = ["ExperimentResult", "run_experiment", "twin_name", "comparison_table", "check_output_folder"]

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


def check_output_folder(folder: str | Path, what: str = "run.out_dir") -> Path:
    """``folder`` as a Path, once it is known that it exists as a writable directory or can be created.

    Nothing is created: the nearest existing ancestor must be a writable directory.

    Raises:
        ConfigError: a part of the path is a file, or the folder cannot be written.
    """
    folder = Path(folder).expanduser()
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            raise ConfigError(f"{what} must be a folder that can be created; {probe} is a dangling link")
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} must be a folder; got {folder} ({probe} is a file, not a folder)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} must be a folder you can write; got {folder} ({probe} is not writable)")
    return folder


def _check_run_name(config: ExperimentConfig) -> None:
    name = Path(config.run.name or config.preset)
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise ConfigError(
            f"run.name must be a folder name inside run.out_dir (no '..', not absolute); got {str(name)!r}"
        )


def _build_data(config: ExperimentConfig) -> DataBundle:
    """:func:`build_data`, with a file-system error (writing the split files under run.out_dir; the
    loaders turn their own read errors into DataError) as a ConfigError."""
    try:
        return build_data(config.data, config.run.out_dir, progress=config.run.progress)
    except OSError as exc:
        raise ConfigError(f"cannot prepare the data under run.out_dir={config.run.out_dir}: {exc}") from exc


def _first_trainer(config: ExperimentConfig, data: DataBundle, name: str, model_dir: Path) -> Trainer:
    """The trainer of the config's model: building it checks the model and its arguments."""
    args = config.model.args
    if "num_classes" in args and not (isinstance(args["num_classes"], int) and args["num_classes"] >= data.n_classes):
        raise ConfigError(
            f"model.args.num_classes must be at least the data's {data.n_classes} classes; got {args['num_classes']!r}"
        )
    if "in_chans" in args and args["in_chans"] != data.in_chans:
        raise ConfigError(
            f"model.args.in_chans must be the data's {data.in_chans} channel(s); got {args['in_chans']!r}"
        )
    try:
        return Trainer(config, data, name, model_dir)
    except HQNNError:
        raise
    except (RuntimeError, ValueError, TypeError) as exc:  # a builder given arguments it cannot use
        raise ConfigError(
            f"cannot build model {name!r} with model.args {config.model.args}: {type(exc).__name__}: {exc}"
        ) from exc


def run_experiment(config: ExperimentConfig) -> ExperimentResult:
    """Train what ``config`` describes and write the run directory (see :mod:`hqnn.train.rundir`).

    A fresh run directory is created only once the output folder, the data and the first model
    are known to be good, and it is removed again when the run fails (or is interrupted) before
    any model finished an epoch, so that a failed start leaves nothing behind.

    Args:
        config: the resolved config.

    Returns:
        The :class:`ExperimentResult`.

    Raises:
        ConfigError: bad config (unknown model, no twin, resume mismatch, unwritable run.out_dir).
        DataError: the data cannot be loaded.
        KeyboardInterrupt: after the interrupted model's last good checkpoint is secured.
    """
    get_model_entry(config.model.name)  # an unknown model is named before its twin is looked for
    names = [config.model.name] + ([twin_name(config)] if config.train.compare else [])
    device = resolve_device(config.train.device)
    main = init_distributed(device).is_main  # under torchrun: rank 0 alone writes the run directory
    _check_run_name(config)
    check_output_folder(config.run.out_dir)
    if config.run.resume:
        run_dir = broadcast_object(prepare_run_dir(config, str(device)) if main else None)
        assert run_dir is not None  # rank 0's directory
        log.info("run directory: %s", run_dir)
        data = _build_data(config)
        results = [Trainer(config, data, name, run_dir / name).fit() for name in names]
    else:
        run_dir = broadcast_object(choose_run_dir(config) if main else None)
        assert run_dir is not None  # rank 0's choice
        data = _build_data(config)
        first = _first_trainer(config, data, names[0], run_dir / names[0])
        try:
            if main:
                prepare_run_dir(config, str(device), run_dir)
        except OSError as exc:
            raise ConfigError(f"cannot create the run directory {run_dir}: {exc}") from exc
        log.info("run directory: %s", run_dir)
        try:
            results = [first.fit()] + [Trainer(config, data, name, run_dir / name).fit() for name in names[1:]]
        except BaseException:
            if main and not any((run_dir / name / CHECKPOINT_NAME).exists() for name in names):
                log.warning("no epoch finished: removing %s", run_dir)
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    if main:
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
