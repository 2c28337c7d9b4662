"""A study: every arm trained with every seed on one split and one recipe, then compared over seeds.

One seed is one sample: a hybrid that beats its twin by two points on one seed may lose by three on
the next. A study trains each arm (:mod:`hqnn.models.arms`: the hybrid, its classical twin, the
circuit without entanglement, the frozen circuit) with seeds ``run.seed, run.seed + 1, ...`` on the
same split file; seed k gives every arm the same batch order and the same initial trunk weights,
so the arms' scores are paired by seed, and :mod:`hqnn.train.stats` summarises each arm and
compares the hybrid with every other arm.

Layout::

    <run.out_dir>/<run.name or preset>-study/      (or the ``out_dir`` given; -2, -3, ... when taken)
        config.yaml, environment.json              the resolved config and what ran it
        runs/<arm>/seed<k>/                        one Trainer run: checkpoint.pt, metrics.*, model.pt,
                                                   summary.json, test_predictions.npz
        study.json                                 every number (per seed and summarised) and the comparisons
        report.md, report.html, plots/*.png        :mod:`hqnn.train.report`

Resuming (``run.resume=true``, same config) keeps the finished runs, continues the interrupted one
from its last checkpoint and trains the rest: every run is a pure function of the config, the arm
and the seed, so the final numbers equal those of an uninterrupted study. The seeds and arms may
differ on resumption (add seeds to a finished study, for instance): runs already there are reused.
That is also how a study spread over machines is merged: each trains a ``shard`` of the (seed, arm)
runs, and a resumption over their gathered ``runs/`` folders writes the study; ``workers`` trains
the runs in parallel processes on one machine (docs/training.md, "Scaling out"). Under ``torchrun``
every rank trains every run together (DistributedDataParallel); rank 0 alone writes the study
directory, reads the runs back and writes ``study.json`` and the report, and sends the rest what
it read.
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from hqnn.exceptions import ConfigError, HQNNError
from hqnn.models import create_model
from hqnn.models.arms import ARMS, DEFAULT_ARMS, quantum_layers
from hqnn.train.checkpoint import CHECKPOINT_NAME, write_json
from hqnn.train.config import ExperimentConfig, config_to_dict
from hqnn.train.distributed import broadcast_object, context, init_distributed, run_in_workers
from hqnn.train.distributed import shard as shard_tasks
from hqnn.train.experiment import twin_name
from hqnn.train.loaders import DataBundle, build_data
from hqnn.train.rundir import environment, prepare_run_dir
from hqnn.train.stats import Comparison, Summary, compare_paired, summarize
from hqnn.train.trainer import Trainer, model_arguments, resolve_device

__all__ = [
    "METRICS",
    "METRIC_LABELS",
    "PRIMARY_METRIC",
    "DEFAULT_SEEDS",
    "RunRecord",
    "ArmResult",
    "StudyResult",
    "run_study",
    "study_dir_for",
]

log = logging.getLogger(__name__)

METRICS = ("accuracy", "f1", "balanced_accuracy")  # the test scores summarised and compared
METRIC_LABELS = {"accuracy": "accuracy", "f1": "macro-F1", "balanced_accuracy": "balanced accuracy"}
PRIMARY_METRIC = "f1"  # the verdict's metric: the trainer's default model-selection score
DEFAULT_SEEDS = 5
STUDY_FORMAT = 1  # version of the study.json layout


@dataclass(frozen=True)
class RunRecord:
    """One finished (arm, seed) run, as read back from its run directory (``summary.json`` and
    ``metrics.json``), so that a run trained now and one finished before a resumption give the
    same numbers."""

    arm: str
    seed: int
    model_name: str
    run_dir: Path
    test: dict[str, float]
    per_class_f1: list[float]
    classes: list[str]
    confusion: list[list[int]]
    history: list[dict[str, Any]]
    best_epoch: int
    n_params: int
    n_quantum_params: int
    seconds_per_epoch: float
    samples_per_s: float
    sim_method: str | None

    @classmethod
    def from_dir(cls, arm: str, seed: int, run_dir: Path) -> RunRecord:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        history = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        report = summary["test_report"]
        return cls(
            arm, seed, summary["model_name"], run_dir, summary["test"],
            [row["f1"] for row in report["per_class"]], [str(row["class"]) for row in report["per_class"]],
            report["confusion"], history, summary["best_epoch"], summary["n_params"], summary["n_quantum_params"],
            summary["seconds_per_epoch"], summary["samples_per_s"], summary.get("sim_method"),
        )


@dataclass
class ArmResult:
    """One arm over all seeds: its runs (in seed order) and the summaries of their test scores."""

    arm: str
    model_name: str
    runs: list[RunRecord]
    summaries: dict[str, Summary] = field(init=False)
    per_class_f1: list[Summary] = field(init=False)

    def __post_init__(self) -> None:
        self.summaries = {metric: summarize(self.values(metric)) for metric in METRICS}
        self.per_class_f1 = [summarize(column) for column in zip(*(run.per_class_f1 for run in self.runs))]

    def values(self, metric: str) -> list[float]:
        """The per-seed test ``metric``."""
        return [run.test[metric] for run in self.runs]

    def mean_of(self, key: str) -> float:
        """The mean over seeds of a per-run number (``seconds_per_epoch``, ``samples_per_s``)."""
        return sum(getattr(run, key) for run in self.runs) / len(self.runs)

    def as_dict(self, study_dir: Path) -> dict[str, Any]:
        first = self.runs[0]
        return {
            "model_name": self.model_name,
            "seeds": [run.seed for run in self.runs],
            "runs": [str(run.run_dir.relative_to(study_dir)) for run in self.runs],
            "n_params": first.n_params,
            "n_quantum_params": first.n_quantum_params,
            "seconds_per_epoch": round(self.mean_of("seconds_per_epoch"), 4),
            "samples_per_s": round(self.mean_of("samples_per_s"), 1),
            "sim_method": first.sim_method,
            "per_seed": {
                **{metric: self.values(metric) for metric in METRICS},
                "per_class_f1": [run.per_class_f1 for run in self.runs],
                "confusion": [run.confusion for run in self.runs],
                "best_epoch": [run.best_epoch for run in self.runs],
                "seconds_per_epoch": [run.seconds_per_epoch for run in self.runs],
                "samples_per_s": [run.samples_per_s for run in self.runs],
            },
            "summary": {
                **{metric: summary.as_dict() for metric, summary in self.summaries.items()},
                "per_class_f1": [
                    {"class": name, **summary.as_dict()} for name, summary in zip(first.classes, self.per_class_f1)
                ],
            },
        }


@dataclass
class StudyResult:
    """A finished study.

    Attributes:
        study_dir: its directory.
        config: the study's config (``run.seed`` is the first seed).
        seeds: the seeds, in order.
        arms: per arm, in the order asked, its :class:`ArmResult`.
        comparisons: per other arm, per metric, the paired :class:`~hqnn.train.stats.Comparison` of
            ``hybrid − arm``.
        environment: seed, versions, machine and command (:func:`hqnn.train.rundir.environment`).
        report_md, report_html: the reports (set once written).
    """

    study_dir: Path
    config: ExperimentConfig
    seeds: list[int]
    arms: dict[str, ArmResult]
    comparisons: dict[str, dict[str, Comparison]]
    environment: dict[str, Any] = field(default_factory=dict)
    report_md: Path | None = None
    report_html: Path | None = None

    @property
    def classes(self) -> list[str]:
        return next(iter(self.arms.values())).runs[0].classes

    def verdicts(self) -> list[str]:
        """One line per comparison on the primary metric (macro-F1)."""
        if not self.comparisons:
            return ["only the hybrid arm was trained: nothing to compare it with"]
        return [by_metric[PRIMARY_METRIC].verdict for by_metric in self.comparisons.values()]

    def as_dict(self) -> dict[str, Any]:
        env = self.environment
        return {
            "format": STUDY_FORMAT,
            "preset": self.config.preset,
            "description": self.config.description,
            "seeds": self.seeds,
            "primary_metric": PRIMARY_METRIC,
            "verdicts": self.verdicts(),
            "classes": self.classes,
            "arms": {name: arm.as_dict(self.study_dir) for name, arm in self.arms.items()},
            "comparisons": {
                f"hybrid-{other}": {
                    "a": "hybrid",
                    "b": other,
                    "metric": PRIMARY_METRIC,
                    "n_seeds": by_metric[PRIMARY_METRIC].n,
                    "difference": by_metric[PRIMARY_METRIC].difference,
                    "ci95": by_metric[PRIMARY_METRIC].as_dict()["ci95"],
                    "p_value": by_metric[PRIMARY_METRIC].p_value,
                    "p_wilcoxon": by_metric[PRIMARY_METRIC].p_wilcoxon,
                    "verdict": by_metric[PRIMARY_METRIC].verdict,
                    "metrics": {metric: c.as_dict() for metric, c in by_metric.items()},
                }
                for other, by_metric in self.comparisons.items()
            },
            "config": config_to_dict(self.config),
            "machine": env.get("machine"),
            "versions": env.get("versions"),
            "device": env.get("device"),
            "finished": env.get("finished"),
            "command": env.get("command"),
        }


def study_dir_for(config: ExperimentConfig, out_dir: str | Path | None = None) -> Path:
    """Where the study of ``config`` goes (before any ``-2`` suffix): ``out_dir`` when given, else
    ``<run.out_dir>/<run.name or preset>-study``."""
    if out_dir is not None:
        return Path(out_dir)
    return Path(config.run.out_dir) / f"{config.run.name or config.preset}-study"


def _check_request(config: ExperimentConfig, seeds: int, arms: tuple[str, ...]) -> None:
    if isinstance(seeds, bool) or not isinstance(seeds, numbers.Integral) or seeds < 1:
        raise ConfigError(f"a study needs at least 1 seed (5 by default, 3 or more for a test); got {seeds!r}")
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        raise ConfigError(f"unknown arm(s) {', '.join(map(repr, unknown))}; valid arms: {', '.join(ARMS)}")
    if len(set(arms)) != len(arms):
        raise ConfigError(f"each arm may be named once; got {', '.join(arms)}")
    if "hybrid" not in arms:
        raise ConfigError(
            f"a study compares the hybrid with the other arms, so its arms must include hybrid; got {', '.join(arms)}"
        )


def _check_writable(target: Path) -> None:
    """Refuse a study directory that cannot be created: a file in its place or above it."""
    for path in (target, *target.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"the study directory {target} cannot be created: {path} is a file, not a folder")
            return


def _check_model(config: ExperimentConfig, arms: tuple[str, ...], data: DataBundle) -> None:
    """Build the hybrid once (without disturbing the global RNG) to refuse circuit arms on a model
    without a circuit, and find the twin, before anything trains."""
    name = config.model.name
    with torch.random.fork_rng(devices=[]):
        model = create_model(name, **model_arguments(name, config.model.args, data))
    if not quantum_layers(model):
        circuit_arms = [arm for arm in arms if arm != "twin"]
        raise ConfigError(
            f"model {name!r} has no quantum circuit layer, so the arm(s) {', '.join(circuit_arms)} do not apply: "
            "compare a hybrid model (e.g. model.name=cnn_qnn)"
        )
    if "twin" in arms:
        try:
            twin_name(config)
        except ConfigError as exc:
            raise ConfigError(f"the twin arm does not apply: {exc}, or leave twin out of the arms") from exc


def _on_main(function: Any, *args: Any) -> Any:
    """``function(*args)`` computed by rank 0 and sent to every rank; an :class:`HQNNError` or
    ``OSError`` it raises is raised on every rank (rather than leaving the others waiting)."""
    value: Any = None
    if context().is_main:
        try:
            value = function(*args)
        except (HQNNError, OSError) as exc:
            value = exc
    value = broadcast_object(value)
    if isinstance(value, BaseException):
        raise value
    return value


def _finished_record(config: ExperimentConfig, arm: str, seed: int, run_dir: Path) -> tuple[RunRecord | None, bool]:
    """``(record, resume)``: the run's record when it is finished with ``train.epochs`` epochs
    (else None), and whether a checkpoint is there to continue from."""
    summary = run_dir / "summary.json"
    if (
        summary.is_file()
        and (run_dir / "model.pt").is_file()
        and json.loads(summary.read_text(encoding="utf-8")).get("status") == "finished"
    ):
        record = RunRecord.from_dir(arm, seed, run_dir)
        if len(record.history) == config.train.epochs:
            return record, False
        # finished with fewer epochs: a resumed study with a larger train.epochs extends the run
    return None, (run_dir / CHECKPOINT_NAME).is_file()


def _run_one(config: ExperimentConfig, data: DataBundle, arm: str, seed: int, run_dir: Path, place: str) -> RunRecord:
    """Train (or continue, or just read back) one (arm, seed) run; ``place`` (``3/15``) is for the log.
    Under torchrun rank 0 reads the run directory and every rank gets its answer."""
    record, resume = _on_main(_finished_record, config, arm, seed, run_dir)
    if record is not None:
        log.info("study %s: %s seed %d already finished in %s", place, arm, seed, run_dir)
        return record
    run_config = replace(
        config,
        run=replace(config.run, seed=seed, resume=resume),
        train=replace(config.train, compare=False),
    )
    model_name = twin_name(config) if arm == "twin" else config.model.name
    log.info("study %s: %s (%s) seed %d%s", place, arm, model_name, seed, " resumed" if resume else "")
    Trainer(run_config, data, model_name, run_dir, arm=arm).fit()
    record = _on_main(RunRecord.from_dir, arm, seed, run_dir)
    log.info(
        "study %s: %s seed %d: test accuracy %.4f, macro-F1 %.4f (%.2fs/epoch)",
        place, arm, seed, record.test["accuracy"], record.test["f1"], record.seconds_per_epoch,
    )
    return record


_WORKER_DATA: dict[str, DataBundle] = {}  # a worker process's data, built once per data config


def _run_in_worker(config: ExperimentConfig, arm: str, seed: int, run_dir: Path, place: str) -> RunRecord:
    """:func:`_run_one` in a worker process of :func:`run_in_workers`, which builds the data itself
    (from the split files the study has written) rather than receiving it."""
    key = repr(config.data)
    if key not in _WORKER_DATA:
        _WORKER_DATA[key] = build_data(config.data, config.run.out_dir, progress=False)
    return _run_one(config, _WORKER_DATA[key], arm, seed, run_dir, place)


def run_study(
    config: ExperimentConfig,
    seeds: int = DEFAULT_SEEDS,
    arms: tuple[str, ...] | list[str] = DEFAULT_ARMS,
    out_dir: str | Path | None = None,
    report: bool = True,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
) -> StudyResult | None:
    """Train every arm with every seed, compare them and write the study directory.

    Args:
        config: the resolved config (its model must be a hybrid; ``run.seed`` is the first seed;
            ``run.resume=true`` continues the study in :func:`study_dir_for`).
        seeds: how many seeds: ``run.seed, run.seed + 1, ...``.
        arms: arms of :data:`hqnn.models.arms.ARMS`, including ``hybrid``.
        out_dir: the study directory (default :func:`study_dir_for`).
        report: write ``report.md``, ``report.html`` and the plots.
        workers: train the (seed, arm) runs in this many spawned processes on this machine
            (:func:`~hqnn.train.distributed.run_in_workers`, ``cores // workers`` threads each
            unless ``train.threads`` is set); every run seeds itself, so the numbers are those of
            the sequential study.
        shard: ``(index, count)``: train only shard ``index`` of ``count`` of the seed-major
            (seed, arm) list (:func:`~hqnn.train.distributed.shard`) and return None, writing no
            ``study.json`` or report. Once every shard's ``runs/`` folder is in one study
            directory, the same command without the shard plus ``run.resume=true`` trains nothing
            more and writes the study.

        Under ``torchrun`` every rank calls this with the same arguments and trains every run
        with the others; ``workers`` must then be 1.

    Returns:
        The :class:`StudyResult` (None for a shard), the same on every rank; rank 0 alone writes.

    Raises:
        ConfigError: fewer than 1 seed, an unknown or repeated arm, no hybrid arm, no twin
            registered, a circuit arm for a model without a circuit, a resumption with another
            config, ``workers`` above 1 under torchrun.
        DataError: the data cannot be loaded.
        KeyboardInterrupt: after the running (arm, seed)'s last good checkpoint is secured;
            ``run.resume=true`` continues.

    Example:
        >>> result = run_study(load_config("digits_cnn_qnn"), seeds=5)  # doctest: +SKIP
        >>> print("\\n".join(result.verdicts()))  # doctest: +SKIP
    """
    arms = tuple(arms)
    _check_request(config, seeds, arms)
    if workers < 1:
        raise ConfigError(f"a study needs at least 1 worker; got {workers}")
    if shard is not None:
        shard_tasks([], *shard)  # refuses a bad INDEX/COUNT before anything is written
    device = resolve_device(config.train.device)
    dist = init_distributed(device)  # under torchrun: all ranks train each run, rank 0 writes
    if dist.enabled and workers > 1:
        raise ConfigError(
            f"--workers {workers} does not apply under torchrun ({dist.world_size} ranks already train each run "
            "together); use --workers 1 with torchrun, or --workers without torchrun"
        )
    target = study_dir_for(config, out_dir)
    _check_writable(target)
    data = build_data(config.data, config.run.out_dir, progress=config.run.progress)
    _check_model(config, arms, data)
    # the run-directory rules (never overwrite; resume only the same config) with the study's path
    placed = replace(config, run=replace(config.run, name=target.name, out_dir=str(target.parent)))
    study_dir = _on_main(prepare_run_dir, placed, str(device))
    log.info("study directory: %s (%d seed(s), arms %s)", study_dir, seeds, ", ".join(arms))
    seed_list = [config.run.seed + k for k in range(int(seeds))]
    records: dict[str, list[RunRecord]] = {arm: [] for arm in arms}
    # seed-major: an interrupted study holds complete pairs for its first seeds
    tasks = [(arm, seed) for seed in seed_list for arm in arms]
    mine = tasks if shard is None else shard_tasks(tasks, *shard)
    calls = [
        (config, arm, seed, study_dir / "runs" / arm / f"seed{seed}", f"{tasks.index((arm, seed)) + 1}/{len(tasks)}")
        for arm, seed in mine
    ]
    try:
        if workers == 1:
            finished = [_run_one(config, data, *call[1:]) for call in calls]
        else:
            finished = run_in_workers(_run_in_worker, calls, workers)
    except KeyboardInterrupt:
        log.warning(
            "study interrupted: %s keeps the finished runs and the running one's last checkpoint; continue with "
            "the same command plus run.resume=true --out %s", study_dir, study_dir,
        )
        raise
    if shard is not None:
        log.info("study shard %d/%d: %d run(s) finished in %s", shard[0], shard[1], len(finished), study_dir / "runs")
        return None
    for (arm, _), record in zip(mine, finished):
        records[arm].append(record)
    results = {arm: ArmResult(arm, runs[0].model_name, runs) for arm, runs in records.items()}
    comparisons = {
        other: {
            metric: compare_paired(
                results["hybrid"].values(metric), results[other].values(metric), "hybrid", other, METRIC_LABELS[metric]
            )
            for metric in METRICS
        }
        for other in arms
        if other != "hybrid"
    }
    env = environment(config, str(device))
    env["finished"] = env.pop("started")  # taken now, when the last run is done
    env["versions"] |= _extra_versions()
    env["machine"] |= {"cpus": _cpu_count(), "python_implementation": platform.python_implementation()}
    study = StudyResult(study_dir, config, seed_list, results, comparisons, env)
    if not dist.is_main:
        return study
    write_json(study.as_dict(), study_dir / "study.json")
    if report:
        from hqnn.train.report import write_report

        study.report_md, study.report_html = write_report(study)
    return study


def _extra_versions() -> dict[str, str | None]:
    versions = {}
    for package in ("scipy", "matplotlib"):
        try:
            versions[package] = __import__(package).__version__
        except ImportError:  # pragma: no cover - declared dependencies
            versions[package] = None
    return versions


def _cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
