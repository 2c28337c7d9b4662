"""The training loop: seeded, deterministic, checkpointed every epoch, resumable, two-phase aware.

One :class:`Trainer` trains one model on a :class:`~hqnn.train.loaders.DataBundle`. Each epoch it
records train and validation loss, accuracy and macro precision/recall/F1, keeps the weights of
the best validation epoch (``train.select_metric``, macro-F1 by default) and restores them when a
phase ends, as the CIFAR-100 recipe's ``train_model`` does (spec 4.2). Models with ``set_phase``
(the ResNet quantum head, spec 4.5) train ``train.warmup_epochs`` in phase A (quantum branch
frozen, gate closed) and the rest in phase B, each phase with a fresh optimiser and schedule.
"""

from __future__ import annotations

import inspect
import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hqnn.exceptions import ConfigError
from hqnn.models import ResNet, create_model, get_model_entry, load_torchvision_weights
from hqnn.qnn import QuantumLayer
from hqnn.train.checkpoint import CHECKPOINT_NAME, atomic_write, load_checkpoint, save_checkpoint, write_json
from hqnn.train.config import ExperimentConfig, config_to_dict
from hqnn.train.loaders import DataBundle, make_loader
from hqnn.train.metrics import METRIC_NAMES, classification_metrics, is_better
from hqnn.train.optim import build_optimizer, build_scheduler
from hqnn.train.rundir import write_history

__all__ = [
    "Trainer",
    "FitResult",
    "model_arguments",
    "count_parameters",
    "seed_everything",
    "runtime_settings",
    "resolve_device",
]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What one model's training produced.

    Attributes:
        model_name: registry name.
        best_epoch: the (global, 1-based) epoch whose weights were kept.
        val: validation metrics of that epoch.
        test: test metrics of the kept weights.
        n_params: trainable parameters in all.
        n_quantum_params: parameters inside quantum circuit layers.
        seconds: training time summed over epochs (across resumptions).
        model_dir: where its checkpoint, metrics and summary are.
    """

    model_name: str
    best_epoch: int
    val: dict[str, float]
    test: dict[str, float]
    n_params: int
    n_quantum_params: int
    seconds: float
    model_dir: Path

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "model_dir": str(self.model_dir)}


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def runtime_settings(deterministic: bool = True, threads: int | None = None) -> Iterator[None]:
    """Inside the block: deterministic kernels (warning, not failing, where an op has none) and
    cuDNN benchmarking off when ``deterministic``; ``threads`` torch CPU threads when given. The
    previous global settings come back afterwards."""
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.get_num_threads(),
    )
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # needed by deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[2], previous[3]
        torch.set_num_threads(previous[4])


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when available).

    Raises:
        ConfigError: ``cuda`` asked for on a machine without it.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but torch sees no CUDA device; use train.device=cpu or auto")
    return torch.device(name)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, parameters of :class:`~hqnn.qnn.QuantumLayer` modules)."""
    quantum = sum(p.numel() for m in model.modules() if isinstance(m, QuantumLayer) for p in m.parameters())
    return sum(p.numel() for p in model.parameters()), quantum


def model_arguments(name: str, args: dict[str, Any], data: DataBundle) -> dict[str, Any]:
    """The builder arguments of ``name``: ``num_classes``, ``in_chans`` (and ``img_size`` where the
    builder takes it) from the data, updated by the config's ``args``.

    Raises:
        ConfigError: unknown model.
    """
    defaults: dict[str, Any] = {"num_classes": data.n_classes, "in_chans": data.in_chans}
    if "img_size" in inspect.signature(get_model_entry(name).builder).parameters:
        defaults["img_size"] = data.image_size
    return {**defaults, **args}


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "cached": cached},
        "python": [version, list(internal), gauss],
    }


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["loader"])
    numpy_state = state["numpy"]
    keys = numpy_state["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


class Trainer:
    """Trains one registered model on prepared data and writes its part of the run directory.

    Args:
        config: the experiment config.
        data: the prepared splits and transforms.
        model_name: registry name of the model to train (the config's model or its twin).
        model_dir: folder for this model's checkpoint, metrics and summary.

    Raises:
        ConfigError: unknown model, ``train.warmup_epochs`` for a model without ``set_phase``.

    Example:
        >>> result = Trainer(config, build_data(config.data, "runs"), "cnn_qnn", Path("runs/x/cnn_qnn")).fit()  # doctest: +SKIP
    """

    def __init__(self, config: ExperimentConfig, data: DataBundle, model_name: str, model_dir: Path):
        self.config, self.data, self.model_name = config, data, model_name
        self.model_dir = Path(model_dir)
        self.device = resolve_device(config.train.device)
        seed_everything(config.run.seed)
        self.model_args = model_arguments(model_name, config.model.args, data)
        self.model = create_model(model_name, **self.model_args)
        if config.model.pretrained is not None:
            if not isinstance(self.model, ResNet):
                raise ConfigError(f"model.pretrained loads torchvision ResNet weights; {model_name} is not a ResNet")
            load_torchvision_weights(self.model, config.model.pretrained)
        self.model.to(self.device)
        self.phases = self._phases()
        data.train_transform.to(self.device)
        data.eval_transform.to(self.device)
        weights = None if data.class_weights is None else data.class_weights.to(self.device)
        self.criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=config.train.label_smoothing)
        self.generator = torch.Generator().manual_seed(config.run.seed)
        eval_batch = config.train.eval_batch_size or 4 * config.train.batch_size
        self.loaders = {
            "train": make_loader(data.train, config.train.batch_size, True, self.generator),
            "val": make_loader(data.val, eval_batch, False),
            "test": make_loader(data.test, eval_batch, False),
        }
        self.epoch = 0  # finished epochs, all phases together
        self.phase_index = 0
        self.best: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []

    def _phases(self) -> list[tuple[str | None, int]]:
        train = self.config.train
        if not hasattr(self.model, "set_phase"):
            if train.warmup_epochs:
                raise ConfigError(
                    f"train.warmup_epochs={train.warmup_epochs} needs a two-phase model (with set_phase, e.g. "
                    f"resnet34_qhead); {self.model_name} has none: set train.warmup_epochs=0"
                )
            return [(None, train.epochs)]
        if train.warmup_epochs == 0:
            return [("B", train.epochs)]  # the recipe's single phase: gate open, everything trained
        return [("A", train.warmup_epochs), ("B", train.epochs - train.warmup_epochs)]

    def _enter_phase(self, index: int) -> None:
        self.phase_index = index
        phase, epochs = self.phases[index]
        params = self.model.set_phase(phase) if phase else [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(params, self.config.optim)
        self.scheduler, self.per_batch = build_scheduler(
            self.optimizer, self.config.schedule, self.config.optim.lr, epochs, len(self.loaders["train"])
        )
        self.best = None
        if phase:
            log.info("%s: phase %s, %d epoch(s), %d trainable tensors", self.model_name, phase, epochs, len(params))

    def _resume(self) -> bool:
        path = self.model_dir / CHECKPOINT_NAME
        if not (self.config.run.resume and path.is_file()):
            return False
        state = load_checkpoint(path)
        self._enter_phase(state["phase_index"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        _set_rng_state(state["rng"], self.generator)
        log.info("%s: resumed from %s after epoch %d", self.model_name, path, self.epoch)
        return True

    def _checkpoint(self) -> None:
        save_checkpoint(
            {
                "model_name": self.model_name,
                "config": config_to_dict(self.config),
                "epoch": self.epoch,
                "phase_index": self.phase_index,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "best": self.best,
                "history": self.history,
                "rng": _rng_state(self.generator),
            },
            self.model_dir / CHECKPOINT_NAME,
        )
        write_history(self.history, self.model_dir)

    def _pass(self, split: str, training: bool) -> dict[str, float]:
        """One pass over a split (training steps when ``training``); returns its metrics."""
        self.model.train(training)
        total_loss, labels_seen, predicted = 0.0, [], []
        loader = self.loaders[split]
        if self.config.run.progress:
            from tqdm.auto import tqdm

            loader = tqdm(loader, desc=f"{self.model_name} {split} {self.epoch + 1}", leave=False, unit="batch")
        with torch.set_grad_enabled(training):
            for images, labels, index in loader:
                images, labels = images.to(self.device), labels.to(self.device)
                inputs = self.data.prepare(split, images, index, training)  # (B, C, S, S)
                logits = self.model(inputs)  # (B, classes)
                loss = self.criterion(logits, labels)
                if training:
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    if self.scheduler is not None and self.per_batch:
                        self.scheduler.step()
                total_loss += float(loss.detach()) * labels.shape[0]
                labels_seen.append(labels.cpu())
                predicted.append(logits.detach().argmax(dim=1).cpu())
        labels_all = torch.cat(labels_seen)
        return classification_metrics(labels_all.numpy(), torch.cat(predicted).numpy(), total_loss / max(len(labels_all), 1))

    def _train_epoch(self) -> None:
        phase, _ = self.phases[self.phase_index]
        select = self.config.train.select_metric
        started, lr = time.perf_counter(), self.optimizer.param_groups[0]["lr"]
        train_metrics = self._pass("train", training=True)
        val_metrics = self._pass("val", training=False)
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()
        self.epoch += 1
        row = {"epoch": self.epoch, "phase": phase or "", "lr": lr}
        row |= {f"train_{k}": train_metrics[k] for k in METRIC_NAMES} | {f"val_{k}": val_metrics[k] for k in METRIC_NAMES}
        row["seconds"] = round(time.perf_counter() - started, 3)
        self.history.append(row)
        if is_better(select, val_metrics[select], None if self.best is None else self.best["score"]):
            self.best = {"score": val_metrics[select], "epoch": self.epoch, "metrics": val_metrics, "state": _cpu_copy(self.model)}
        log.info(
            "%s epoch %d/%d%s: train loss %.4f acc %.4f | val loss %.4f acc %.4f f1 %.4f (%.1fs)",
            self.model_name, self.epoch, self.config.train.epochs, f" phase {phase}" if phase else "",
            train_metrics["loss"], train_metrics["accuracy"], val_metrics["loss"], val_metrics["accuracy"],
            val_metrics["f1"], row["seconds"],
        )
        phase_end = sum(epochs for _, epochs in self.phases[: self.phase_index + 1])
        if self.epoch == phase_end:
            self.model.load_state_dict(self.best["state"])
            log.info("%s: restored the weights of epoch %d (best val %s %.4f)", self.model_name, self.best["epoch"], select, self.best["score"])
            if self.phase_index + 1 < len(self.phases):
                self._enter_phase(self.phase_index + 1)

    def fit(self) -> FitResult:
        """Train (or continue training) to ``train.epochs``, then test the kept weights.

        Returns:
            The :class:`FitResult`; ``model.pt`` and ``summary.json`` are written beside the checkpoint.

        Raises:
            KeyboardInterrupt: re-raised after logging; the checkpoint of the last finished epoch
                is kept, and ``run.resume=true`` continues from it.
        """
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with runtime_settings(self.config.train.deterministic, self.config.train.threads):
            if not self._resume():
                self._enter_phase(0)
            try:
                while self.epoch < self.config.train.epochs:
                    self._train_epoch()
                    self._checkpoint()
            except KeyboardInterrupt:
                write_json({"status": "interrupted", "epochs_finished": self.epoch}, self.model_dir / "summary.json")
                log.warning(
                    "%s: interrupted during epoch %d; %s holds epoch %d; continue with run.resume=true",
                    self.model_name, self.epoch + 1, self.model_dir / CHECKPOINT_NAME, self.epoch,
                )
                raise
            test_metrics = self._pass("test", training=False)
        return self._finish(test_metrics)

    def _finish(self, test_metrics: dict[str, float]) -> FitResult:
        n_params, n_quantum = count_parameters(self.model)
        result = FitResult(
            self.model_name, self.best["epoch"], self.best["metrics"], test_metrics, n_params, n_quantum,
            round(sum(row["seconds"] for row in self.history), 3), self.model_dir,
        )
        weights = {
            "model_name": self.model_name,
            "model_args": self.model_args,
            "classes": list(self.data.train.classes),
            "state_dict": self.model.state_dict(),
        }
        atomic_write(self.model_dir / "model.pt", lambda tmp: torch.save(weights, tmp))
        write_json({"status": "finished", **result.as_dict()}, self.model_dir / "summary.json")
        log.info("%s: test accuracy %.4f, macro-F1 %.4f", self.model_name, test_metrics["accuracy"], test_metrics["f1"])
        return result
