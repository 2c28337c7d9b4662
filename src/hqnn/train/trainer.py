"""The training loop: seeded, deterministic, checkpointed every epoch, resumable, extendable,
two-phase aware, and telling as it goes how long the run will take.

One :class:`Trainer` trains one model on a :class:`~hqnn.train.loaders.DataBundle`. Each epoch it
records train and validation loss, accuracy, balanced accuracy and macro precision/recall/F1, the
training seconds and samples per second (and circuit health from
:class:`~hqnn.train.diagnostics.CircuitMonitor` for hybrid models), keeps the weights of the best
validation epoch (``train.select_metric``, macro-F1 by default) and restores them when a phase
ends, as the CIFAR-100 recipe's ``train_model`` does (spec 4.2). Models with ``set_phase`` (the
ResNet quantum head, spec 4.5) train ``train.warmup_epochs`` in phase A (quantum branch frozen,
gate closed) and the rest in phase B, each phase with a fresh optimiser and schedule.

:func:`run_inference` is the one evaluation pass: the trainer's validation and test passes and
``hqnn evaluate`` all go through it, so that a saved model scored again gives the recorded numbers.

Under ``torchrun`` (:mod:`hqnn.train.distributed`) the training steps run through
DistributedDataParallel on each rank's share of every global batch of ``train.batch_size``, with
the loss scaled so that the step is the one-process step; validation and test are split over the
ranks and gathered; rank 0 alone writes files (docs/training.md, "Scaling out").
"""

from __future__ import annotations

import inspect
import logging
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn

from hqnn.exceptions import ConfigError
from hqnn.models import ResNet, create_model, get_model_entry, load_torchvision_weights
from hqnn.qnn import QuantumLayer
from hqnn.train.checkpoint import CHECKPOINT_NAME, atomic_write, load_checkpoint, save_checkpoint, write_json
from hqnn.train.config import ExperimentConfig, config_to_dict
from hqnn.train.diagnostics import CircuitMonitor
from hqnn.train.distributed import (
    all_gather_objects,
    all_reduce_sum,
    broadcast_object,
    gather_split,
    init_distributed,
    launched,
    wrap_model,
)
from hqnn.train.loaders import DataBundle, make_loader
from hqnn.train.metrics import METRIC_NAMES, classification_metrics, full_report, is_better
from hqnn.train.optim import FlatParameters, build_optimizer, build_scheduler
from hqnn.train.rundir import write_history
from hqnn.train.speed import prepare_model

__all__ = [
    "Trainer",
    "FitResult",
    "MODEL_FORMAT",
    "run_inference",
    "symmetric_views",
    "score_logits",
    "simulator_method",
    "model_arguments",
    "count_parameters",
    "seed_everything",
    "runtime_settings",
    "resolve_device",
]

log = logging.getLogger(__name__)


class _Phased(Protocol):
    """A two-phase model (e.g. ``resnet34_qhead``): ``set_phase`` returns the parameters to train."""

    def set_phase(self, phase: str) -> list[nn.Parameter]: ...


MODEL_FORMAT = 1  # version of the model.pt layout (see Trainer._finish)

# the first batch pays one-off costs (the native kernel compiles on first use, allocators warm
# up), so the run-time estimate times the next few batches instead
ESTIMATE_AFTER_BATCHES = 3
# an evaluation item costs about a third of a training item (the backward pass costs about two
# forwards) until a validation pass has been timed
EVAL_COST_SHARE = 1 / 3


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
        seconds: training time summed over epochs and resumptions (training passes only, not
            validation or checkpoints).
        model_dir: where its checkpoint, metrics and summary are.
        arm: the ablation arm applied (:mod:`hqnn.models.arms`), or None.
        test_report: :func:`~hqnn.train.metrics.full_report` of the test pass.
        seconds_per_epoch: ``seconds`` over the epochs trained.
        samples_per_s: training samples per second of training time.
        sim_method: ``"native"`` (the C kernel) or ``"engine"`` (PyTorch) for the circuits, None
            for a model without a circuit.
        diagnostics: circuit-health warnings (:meth:`CircuitMonitor.warnings`), empty when none.
        history: the per-epoch rows (also in ``metrics.json``; left out of :meth:`as_dict`).
    """

    model_name: str
    best_epoch: int
    val: dict[str, float]
    test: dict[str, float]
    n_params: int
    n_quantum_params: int
    seconds: float
    model_dir: Path
    arm: str | None = None
    test_report: dict[str, Any] = field(default_factory=dict)
    seconds_per_epoch: float = 0.0
    samples_per_s: float = 0.0
    sim_method: str | None = None
    diagnostics: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON types, without ``history`` (what ``summary.json`` and ``comparison.json`` hold)."""
        values = {k: v for k, v in self.__dict__.items() if k != "history"}
        return {**values, "model_dir": str(self.model_dir)}


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def runtime_settings(deterministic: bool = True, threads: int | None = None) -> Iterator[None]:
    """Inside the block: deterministic kernels (warning, not failing, where an op has none) and
    cuDNN benchmarking off when ``deterministic``; ``threads`` torch CPU threads when given. The
    previous global settings come back afterwards.

    Deterministic mode would also fill every new uninitialised tensor with NaN (PyTorch's
    ``fill_uninitialized_memory``, a debugging aid against reading memory that no kernel wrote);
    that is off here, since it changes no result of correct kernels and cost a fifth of
    SQDR-CNN's training step (eight extra passes over its largest tensors)."""
    fill: Any = torch.utils.deterministic  # a module whose attribute torch sets at import
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.get_num_threads(),
        fill.fill_uninitialized_memory,
    )
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # needed by deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        fill.fill_uninitialized_memory = False
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[2], previous[3]
        torch.set_num_threads(previous[4])
        fill.fill_uninitialized_memory = previous[5]


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when available); under torchrun CUDA is this rank's
    ``cuda:LOCAL_RANK``.

    Raises:
        ConfigError: ``cuda`` asked for on a machine without it.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but torch sees no CUDA device; use train.device=cpu or auto")
    if name == "cuda" and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, parameters of :class:`~hqnn.qnn.QuantumLayer` modules)."""
    quantum = sum(p.numel() for m in model.modules() if isinstance(m, QuantumLayer) for p in m.parameters())
    return sum(p.numel() for p in model.parameters()), quantum


def simulator_method(model: nn.Module, device: torch.device) -> str | None:
    """What the model's circuits run on: ``"native"`` when every :class:`~hqnn.qnn.QuantumLayer`
    is planned for the C kernel and the kernel is built (and the device is the CPU), else
    ``"engine"``; None for a model without a circuit. The kernel still hands batches it does not
    suit (a few samples on 13-14 qubits) to the engine."""
    from hqnn.sim import compile_circuit, native_available
    from hqnn.sim.plan import NativePlan

    layers = [m for m in model.modules() if isinstance(m, QuantumLayer)]
    if not layers:
        return None
    if device.type != "cpu" or not native_available():
        return "engine"
    native = all(isinstance(compile_circuit(layer.simulated, layer.method), NativePlan) for layer in layers)
    return "native" if native else "engine"


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


def symmetric_views(inputs: torch.Tensor, views: str) -> list[torch.Tensor]:
    """``inputs`` (B, C, H, W) and its images under a symmetry group: ``none`` (just ``inputs``),
    ``flip`` (plus the left-right mirror) or ``rot90flip`` (the 8 rotations by 90 degrees and
    mirrors of a square, the symmetries of a wafer map)."""
    if views == "none":
        return [inputs]
    mirrors = [inputs, inputs.flip(-1)]
    if views == "flip":
        return mirrors
    return [torch.rot90(image, k, (-2, -1)) for image in mirrors for k in range(4)]


def run_inference(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    prepare: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device,
    views: str = "none",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` in eval mode without gradients over ``loader`` and collect labels and logits.

    Args:
        model: the model (left in the train/eval mode it was in).
        loader: batches ``(images (B, C, H, W), labels (B,), indices (B,))`` as
            :func:`~hqnn.train.loaders.make_loader` yields them.
        prepare: ``prepare(images on device, indices) -> inputs (B, in_chans, S, S)``, e.g.
            ``lambda images, index: data.prepare("test", images, index, False)``.
        device: where the model is.
        views: test-time views (:func:`symmetric_views`); with more than one, the logits returned
            are the mean of the views' log-probabilities (a geometric mean of the probabilities).

    Returns:
        ``(labels (N,) int64, logits (N, n_classes) float32)``, both on the CPU.

    Example:
        >>> labels, logits = run_inference(model, loader, prepare, torch.device("cpu"))  # doctest: +SKIP
    """
    was_training = model.training
    model.eval()
    labels_seen, logits_seen = [], []
    try:
        with torch.no_grad():
            for images, labels, index in loader:
                inputs = prepare(images.to(device), index)
                if views == "none":
                    logits = model(inputs)  # (B, n_classes)
                else:
                    logits = torch.stack(
                        [torch.log_softmax(model(view).float(), dim=1) for view in symmetric_views(inputs, views)]
                    ).mean(dim=0)
                logits_seen.append(logits.float().cpu())
                labels_seen.append(labels.to(torch.int64).cpu())
    finally:
        model.train(was_training)
    if not labels_seen:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0, 0)
    return torch.cat(labels_seen), torch.cat(logits_seen)


def score_logits(
    labels: torch.Tensor, logits: torch.Tensor, class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0
) -> dict[str, float]:
    """The metrics of a split from :func:`run_inference`'s output: the mean cross-entropy over the
    whole split (class-weighted and smoothed as the training loss is) and
    :func:`~hqnn.train.metrics.classification_metrics` of the argmax predictions."""
    if not labels.numel():
        return classification_metrics(labels.numpy(), labels.numpy(), 0.0)
    weight = None if class_weights is None else class_weights.to(logits.device, logits.dtype)
    loss = nn.functional.cross_entropy(logits, labels, weight=weight, label_smoothing=label_smoothing)
    return classification_metrics(labels.numpy(), logits.argmax(dim=1).numpy(), float(loss))


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    _, keys, pos, has_gauss, cached = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss,
                  "cached": cached},
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


def _duration(seconds: float) -> str:
    """``0.4s``, ``42s``, ``3m05s``, ``2h07m``."""
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _tensorboard_tag(key: str) -> str:
    """``train_loss`` -> ``loss/train``, ``val_f1`` -> ``f1/val``; other keys as they are."""
    split, _, name = key.partition("_")
    return f"{name}/{split}" if split in ("train", "val") and name else key


class Trainer:
    """Trains one registered model on prepared data and writes its part of the run directory.

    Args:
        config: the experiment config.
        data: the prepared splits and transforms.
        model_name: registry name of the model to train (the config's model or its twin).
        model_dir: folder for this model's checkpoint, metrics and summary.
        arm: ablation arm applied to the built model (:func:`hqnn.models.arms.apply_arm`), or None.

    Raises:
        ConfigError: unknown model or arm, ``train.warmup_epochs`` for a model without ``set_phase``.

    Example:
        >>> data = build_data(config.data, "runs")  # doctest: +SKIP
        >>> result = Trainer(config, data, "cnn_qnn", Path("runs/x/cnn_qnn")).fit()  # doctest: +SKIP
    """

    def __init__(
        self, config: ExperimentConfig, data: DataBundle, model_name: str, model_dir: Path, arm: str | None = None
    ):
        self.config, self.data, self.model_name, self.arm = config, data, model_name, arm
        self.model_dir = Path(model_dir)
        self.device = resolve_device(config.train.device)
        self.dist = init_distributed(self.device)
        seed_everything(config.run.seed)
        self.model_args = model_arguments(model_name, config.model.args, data)
        self.model = create_model(model_name, **self.model_args)
        if config.model.pretrained is not None:
            if not isinstance(self.model, ResNet):
                raise ConfigError(f"model.pretrained loads torchvision ResNet weights; {model_name} is not a ResNet")
            load_torchvision_weights(self.model, config.model.pretrained)
        if arm is not None:
            from hqnn.models.arms import apply_arm

            self.model = apply_arm(self.model, arm)  # in place; returns the model
        self.model.to(self.device)
        if self.dist.rank:  # every rank built the same model; augmentation and dropout draw apart
            seed_everything(config.run.seed + self.dist.rank)
        # what is called: the model itself, or what train.compile / train.channels_last made of it
        # (it shares the model's parameters; state dicts are always taken from self.model); the
        # training steps go through DistributedDataParallel when several ranks train (wrapped anew
        # in each phase, since a phase changes which parameters train). train.small_map_convs and
        # train.native_layers swap qualifying layers of the model itself in place, keeping its parameters.
        self.network = prepare_model(self.model, config.train)
        self.phases = self._phases()
        data.train_transform.to(self.device)
        data.eval_transform.to(self.device)
        self.class_weights = data.class_weights
        weights = None if data.class_weights is None else data.class_weights.to(self.device)
        self.criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=config.train.label_smoothing)
        # several ranks: the sum over a rank's items, divided by the global batch's (see _step)
        self.item_criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=config.train.label_smoothing,
                                                  reduction="sum")
        self.generator = torch.Generator().manual_seed(config.run.seed)
        eval_batch = config.train.eval_batch_size or 4 * config.train.batch_size
        rank, world = self.dist.rank, self.dist.world_size
        self.loaders = {
            "train": make_loader(data.train, config.train.batch_size, True, self.generator, rank, world),
            "val": make_loader(data.val, eval_batch, False, rank=rank, world_size=world),
            "test": make_loader(data.test, eval_batch, False, rank=rank, world_size=world),
        }
        self.monitor = self._circuit_monitor()
        self.epoch = 0  # finished epochs, all phases together
        self.phase_index = 0
        self.best: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.diagnostics: list[str] = []
        self._train_batch_seconds: float | None = None  # run-time estimate: one training batch
        self._eval_item_seconds: float | None = None  # and one evaluated item, once timed
        self._writer = None
        self._enter_phase(0)  # so that train_step works on a fresh trainer

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

    def _circuit_monitor(self) -> CircuitMonitor | None:
        if not (self.config.train.diagnostics and any(isinstance(m, QuantumLayer) for m in self.model.modules())):
            return None
        return CircuitMonitor(self.model)

    def _phase_start(self, index: int) -> int:
        return sum(epochs for _, epochs in self.phases[:index])

    def _enter_phase(self, index: int) -> None:
        self.phase_index = index
        phase, epochs = self.phases[index]
        if phase:
            params = cast(_Phased, self.model).set_phase(phase)
        else:
            params = [p for p in self.model.parameters() if p.requires_grad]
        self.train_network = wrap_model(self.network, self.device)
        # train.flat_params: the phase's parameters move into one flat buffer for the optimiser (not
        # under DDP, whose gradient buckets copy per parameter anyway)
        self.flat = FlatParameters(params) if self.config.train.flat_params and not self.dist.enabled else None
        self.optimizer = build_optimizer(self.flat.tensors if self.flat else params, self.config.optim,
                                         fused=self.config.train.fused_optimizer)
        self.scheduler, self.per_batch = build_scheduler(
            self.optimizer, self.config.schedule, self.config.optim.lr, epochs, len(self.loaders["train"])
        )
        self.best = None
        self.n_trainable_tensors = len(params)

    def _resume(self) -> bool:
        path = self.model_dir / CHECKPOINT_NAME
        # rank 0 reads the checkpoint and hands it to the others (no shared file system needed)
        state = load_checkpoint(path) if self.dist.is_main and self.config.run.resume and path.is_file() else None
        state = broadcast_object(state)
        if state is None:
            return False
        total = self.config.train.epochs
        if state["epoch"] > total:
            raise ConfigError(
                f"cannot resume {path} with train.epochs={total}: it has already trained {state['epoch']} epochs; "
                f"set train.epochs to {state['epoch']} or more"
            )
        self._enter_phase(state["phase_index"])
        self.model.load_state_dict(state["model"])
        saved_total = state["config"]["train"]["epochs"]
        if saved_total != total and self.phase_index == len(self.phases) - 1:
            self._continue_schedule(state["optimizer"], state["epoch"] - self._phase_start(self.phase_index))
            log.info("%s: extending from %d to %d epochs", self.model_name, saved_total, total)
        else:
            self.optimizer.load_state_dict(self._optimizer_state_in(state["optimizer"]))
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        rng_ranks = state.get("rng_ranks") or [state["rng"]]
        if len(rng_ranks) == self.dist.world_size:
            _set_rng_state(rng_ranks[self.dist.rank], self.generator)
        else:  # another world size: the batch order continues; each rank's own stream starts anew
            _set_rng_state(state["rng"], self.generator)
            torch.manual_seed(self.config.run.seed + self.epoch * 1_000_003 + self.dist.rank)
        log.info("%s: resumed from %s after epoch %d", self.model_name, path, self.epoch)
        return True

    def _continue_schedule(self, optimizer_state: dict[str, Any], epochs_done: int) -> None:
        """A run extended to more epochs: the phase's schedule, rebuilt for its new length, is
        replayed to where the run stands; the optimiser's moments come from the checkpoint and its
        learning rate (and OneCycle's momentum) from the replayed schedule."""
        if self.scheduler is not None:
            steps = epochs_done * (len(self.loaders["train"]) if self.per_batch else 1)
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
                warnings.simplefilter("ignore")
                for _ in range(steps):
                    self.scheduler.step()
        scheduled = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(self._optimizer_state_in(optimizer_state))
        for group, values in zip(self.optimizer.param_groups, scheduled):
            group.update(values)

    def _optimizer_state_in(self, state: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint's optimiser state (always per parameter tensor) for this trainer's optimiser."""
        return state if self.flat is None else self.flat.flat_state(state)

    def _optimizer_state_out(self) -> dict[str, Any]:
        """The optimiser's state per parameter tensor, as checkpoints hold it whatever train.flat_params."""
        state = self.optimizer.state_dict()
        return state if self.flat is None else self.flat.per_parameter_state(state)

    def _checkpoint(self) -> None:
        rng = all_gather_objects(_rng_state(self.generator))  # each rank's streams (a collective)
        if not self.dist.is_main:
            return
        save_checkpoint(
            {
                "model_name": self.model_name,
                "config": config_to_dict(self.config),
                "epoch": self.epoch,
                "phase_index": self.phase_index,
                "model": self.model.state_dict(),
                "optimizer": self._optimizer_state_out(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "best": self.best,
                "history": self.history,
                "rng": rng[0],
                "rng_ranks": rng if self.dist.enabled else None,
            },
            self.model_dir / CHECKPOINT_NAME,
        )
        write_history(self.history, self.model_dir)

    # -- one step, one pass ------------------------------------------------------------------------

    def _step(self, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.flat is not None:
            self.flat.zero_grad()
        else:
            self.optimizer.zero_grad(set_to_none=True)
        logits = self.train_network(inputs)  # (B, n_classes)
        if self.dist.enabled:
            loss = self._global_batch_loss(logits, labels)
        else:
            loss = self.criterion(logits, labels)
        loss.backward()
        if self.flat is not None and (unused := self.flat.unused()):
            names = {id(p): name for name, p in self.model.named_parameters()}
            log.warning("%s: %d parameters got no gradient (%s); with train.flat_params they are updated as if "
                        "it were zero (momentum and weight decay still move them); train.flat_params=false "
                        "skips them", self.model_name, len(unused),
                        ", ".join(names.get(id(self.flat.params[i]), "?") for i in unused[:5]))
        if self.monitor is not None:
            self.monitor.after_backward()
        self.optimizer.step()
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()
        if self.dist.enabled:
            return self._batch_loss, logits.detach()
        return loss.detach(), logits.detach()

    def _global_batch_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """This rank's part of the global batch's mean loss, scaled so that DDP's gradient average
        over W ranks is the gradient of that mean: ``W * (sum over this rank's items) / (sum of
        the global batch's item weights)``. Ranks' shares may differ in size (or be empty), so
        averaging per-rank means would not do. Returns the tensor to backpropagate; its value is
        replaced by the global batch's mean loss (what one process reports) in ``self._batch_loss``."""
        item_weights = torch.ones_like(labels, dtype=logits.dtype)
        if self.criterion.weight is not None:
            item_weights = self.criterion.weight[labels].to(logits.dtype)
        local_sum = self.item_criterion(logits, labels)
        count = torch.tensor(float(labels.numel()), device=logits.device)
        # on the model's device: NCCL reduces CUDA tensors only
        totals = all_reduce_sum(torch.stack([local_sum.detach(), item_weights.sum(), count]).double()).cpu()
        self._batch_loss, self._batch_items = (totals[0] / totals[1]).float(), int(totals[2])
        return local_sum * (self.dist.world_size / totals[1].item())

    def train_step(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One optimiser step (and per-batch schedule step) on a prepared batch.

        Args:
            inputs: (B, in_chans, S, S) prepared images on the trainer's device.
            labels: (B,) int64 labels on the trainer's device.

        Returns:
            The batch's loss, detached (a 0-d tensor on the device).

        The model must be in training mode (``trainer.model.train()``), as it is on a new trainer.
        """
        return self._step(inputs, labels)[0]

    def _bars(self) -> bool:
        """Progress bars only on a terminal: redirected to a file they would write a line of
        carriage-return updates per batch; there one log line per epoch says the same."""
        return self.config.run.progress and sys.stderr.isatty()

    def _pass(self, split: str, training: bool) -> dict[str, float]:
        """One pass over a split (training steps when ``training``); returns its metrics."""
        if not training:
            loader: Iterable = self.loaders[split]
            if self._bars():
                from tqdm.auto import tqdm

                loader = tqdm(loader, desc=f"{self.model_name} {split} {self.epoch + 1}", leave=False, unit="batch")
            labels, logits = self._evaluate(split, loader)
            return score_logits(labels, logits, self.class_weights, self.config.train.label_smoothing)
        self.model.train()
        total_loss, labels_seen, predicted = 0.0, [], []
        bar = None
        loader = self.loaders[split]
        if self._bars():
            from tqdm.auto import tqdm

            loader = bar = tqdm(loader, desc=f"{self.model_name} {split} {self.epoch + 1}", leave=False, unit="batch")
        started = time.perf_counter()
        for batch, (images, labels, index) in enumerate(loader):
            images, labels = images.to(self.device), labels.to(self.device)
            inputs = self.data.prepare(split, images, index, True)  # (B, C, S, S)
            loss, logits = self._step(inputs, labels)
            total_loss += float(loss) * (self._batch_items if self.dist.enabled else labels.shape[0])
            labels_seen.append(labels.cpu())
            predicted.append(logits.argmax(dim=1).cpu())
            started = self._time_batch(batch, started)
            if bar is not None and self._train_batch_seconds is not None:
                bar.set_postfix_str(f"run eta {_duration(self._seconds_left(batch + 1, False))}", refresh=False)
        labels_all, predicted_all = torch.cat(labels_seen), torch.cat(predicted)
        if self.dist.enabled:  # the whole split's metrics, from every rank's items
            parts = all_gather_objects((labels_all, predicted_all))
            labels_all, predicted_all = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return classification_metrics(labels_all.numpy(), predicted_all.numpy(), total_loss / max(len(labels_all), 1))

    def _evaluate(self, split: str, loader: Iterable, views: str = "none") -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`run_inference` over this rank's items of ``split``, gathered into the whole split
        (in its order) when several ranks share it. The plain module runs, not the DDP wrapper,
        whose forward is a collective that ranks with different item counts would not match.
        Validation (model selection) runs on the plain views; the test pass on ``data.test_views``."""
        labels, logits = run_inference(
            self.network, loader, lambda images, index: self.data.prepare(split, images, index, False), self.device,
            views,
        )
        return gather_split(labels, logits, len(getattr(self.data, split)))

    # -- how long the run takes --------------------------------------------------------------------

    def _time_batch(self, batch: int, since: float) -> float:
        """After training batch ``batch`` (0-based): once the batches after the first have been
        timed, estimate the run's time and log it. Returns the time the timing counts from."""
        if self._train_batch_seconds is not None:
            return since
        now = time.perf_counter()
        if batch == 0:
            return now
        if batch == ESTIMATE_AFTER_BATCHES:
            self._train_batch_seconds = (now - since) / batch
            self._log_estimate()
        return since

    def _seconds_left(self, batches_done: int, validated: bool) -> float:
        """Estimated seconds from this point of the current epoch to the end of the test pass."""
        n_batches = len(self.loaders["train"])
        epochs_left = self.config.train.epochs - self.epoch  # the current one included
        batch_seconds = self._train_batch_seconds
        assert batch_seconds is not None  # callers wait for the first estimate
        per_item = self._eval_item_seconds
        if per_item is None:
            per_item = batch_seconds / self.config.train.batch_size * EVAL_COST_SHARE
        train = (epochs_left * n_batches - batches_done) * batch_seconds
        evaluate = ((epochs_left - int(validated)) * len(self.data.val) + len(self.data.test)) * per_item
        return max(train + evaluate, 0.0)

    def _log_estimate(self) -> None:
        """Log the estimated time from the start of the current epoch to the end of the test pass."""
        epochs = self.config.train.epochs - self.epoch
        log.info(
            "%s: estimated run time %s (%d epoch(s) x %d batches at %.3f s/batch, plus validation and test)",
            self.model_name, _duration(self._seconds_left(0, False)), epochs, len(self.loaders["train"]),
            self._train_batch_seconds,
        )

    # -- epochs ------------------------------------------------------------------------------------

    def _train_epoch(self) -> None:
        phase, phase_epochs = self.phases[self.phase_index]
        select = self.config.train.select_metric
        if phase and self.epoch == self._phase_start(self.phase_index):
            log.info(
                "%s: phase %s, %d epoch(s), %d trainable tensors", self.model_name, phase, phase_epochs,
                self.n_trainable_tensors,
            )
        lr = self.optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        train_metrics = self._pass("train", training=True)
        train_seconds = time.perf_counter() - started
        if self._train_batch_seconds is None:  # an epoch too short for the early estimate
            self._train_batch_seconds = train_seconds / max(len(self.loaders["train"]), 1)
            self._log_estimate()
        stats = self.monitor.end_epoch() if self.monitor is not None else {}
        started = time.perf_counter()
        val_metrics = self._pass("val", training=False)
        val_seconds = time.perf_counter() - started
        self._train_batch_seconds = train_seconds / max(len(self.loaders["train"]), 1)
        self._eval_item_seconds = val_seconds / max(len(self.data.val), 1)
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()
        self.epoch += 1
        row: dict[str, Any] = {"epoch": self.epoch, "phase": phase or "", "lr": lr}
        row |= {f"train_{k}": train_metrics[k] for k in METRIC_NAMES}
        row |= {f"val_{k}": val_metrics[k] for k in METRIC_NAMES}
        alpha_raw = getattr(self.model, "alpha_raw", None)
        if alpha_raw is not None:  # the gate of the quantum branch (two-phase models)
            row["alpha"] = float(torch.sigmoid(alpha_raw.detach()))
        row["seconds"] = round(train_seconds, 3)
        row["val_seconds"] = round(val_seconds, 3)
        row["samples_per_s"] = round(len(self.data.train) / max(train_seconds, 1e-9), 1)
        row |= stats
        self.history.append(row)
        self._write_tensorboard(row)
        if is_better(select, val_metrics[select], None if self.best is None else self.best["score"]):
            self.best = {"score": val_metrics[select], "epoch": self.epoch, "metrics": val_metrics,
                         "state": _cpu_copy(self.model)}
        log.info(
            "%s epoch %d/%d%s: train loss %.4f acc %.4f | val loss %.4f acc %.4f f1 %.4f | %.1fs train, "
            "%.0f samples/s | eta %s",
            self.model_name, self.epoch, self.config.train.epochs, f" phase {phase}" if phase else "",
            train_metrics["loss"], train_metrics["accuracy"], val_metrics["loss"], val_metrics["accuracy"],
            val_metrics["f1"], train_seconds, row["samples_per_s"], _duration(self._seconds_left(0, False)),
        )
        phase_end = self._phase_start(self.phase_index) + phase_epochs
        if self.epoch == phase_end and self.phase_index + 1 < len(self.phases):
            self._restore_best()
            self._enter_phase(self.phase_index + 1)

    def _restore_best(self) -> None:
        best = self.best
        assert best is not None  # set by the first epoch
        self.model.load_state_dict(best["state"])
        log.info(
            "%s: restored the weights of epoch %d (best val %s %.4f)", self.model_name, best["epoch"],
            self.config.train.select_metric, best["score"],
        )

    def _open_tensorboard(self):
        if not (self.config.run.tensorboard and self.dist.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.debug("tensorboard is not installed: no event files (pip install 'hqnn[tensorboard]')")
            return None
        # purge_step drops events a previous process wrote after the checkpoint it resumes from
        return SummaryWriter(str(self.model_dir / "tensorboard"), purge_step=self.epoch + 1 if self.epoch else None)

    def _write_tensorboard(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            return
        for key, value in row.items():
            if key not in ("epoch", "phase") and isinstance(value, (int, float)):
                self._writer.add_scalar(_tensorboard_tag(key), value, row["epoch"])
        self._writer.flush()

    def fit(self) -> FitResult:
        """Train (or continue training) to ``train.epochs``, then test the kept weights.

        With ``run.resume`` it continues from the checkpoint, also when ``train.epochs`` is now
        larger than the run was started with (the run is extended; the last phase's schedule is
        rebuilt for its new length and continues from the current step).

        Returns:
            The :class:`FitResult`; ``model.pt``, ``summary.json`` and ``test_predictions.npz``
            are written beside the checkpoint.

        Raises:
            ConfigError: resuming a checkpoint that has trained more than ``train.epochs``.
            KeyboardInterrupt: re-raised after logging; the checkpoint of the last finished epoch
                is kept, and ``run.resume=true`` continues from it.
        """
        if self.dist.is_main:
            self.model_dir.mkdir(parents=True, exist_ok=True)
        with runtime_settings(self.config.train.deterministic, self.config.train.threads):
            self._resume()
            self._writer = self._open_tensorboard()
            try:
                while self.epoch < self.config.train.epochs:
                    self._train_epoch()
                    self._checkpoint()
            except KeyboardInterrupt:
                if self.dist.is_main:
                    write_json(
                        {"status": "interrupted", "epochs_finished": self.epoch}, self.model_dir / "summary.json"
                    )
                log.warning(
                    "%s: interrupted during epoch %d; %s holds epoch %d; continue with run.resume=true",
                    self.model_name, self.epoch + 1, self.model_dir / CHECKPOINT_NAME, self.epoch,
                )
                raise
            finally:
                if self._writer is not None:
                    self._writer.close()
            self._restore_best()
            labels, logits = self._evaluate("test", self.loaders["test"], self.config.data.test_views)
        return self._finish(labels, logits)

    def _finish(self, labels: torch.Tensor, logits: torch.Tensor) -> FitResult:
        test_metrics = score_logits(labels, logits, self.class_weights, self.config.train.label_smoothing)
        probabilities = torch.softmax(logits, dim=1) if logits.numel() else torch.zeros(0, self.data.n_classes)
        predictions = logits.argmax(dim=1) if logits.numel() else torch.zeros(0, dtype=torch.int64)
        classes = list(self.data.train.classes)
        report = full_report(
            labels.numpy(), predictions.numpy(), probabilities.numpy() if labels.numel() else None,
            classes if len(classes) == self.data.n_classes else None,
        )
        if self.dist.is_main:
            np.savez(
                self.model_dir / "test_predictions.npz", labels=labels.numpy(), predictions=predictions.numpy(),
                probabilities=probabilities.numpy(),
            )
        if self.monitor is not None:
            self.diagnostics = list(self.monitor.warnings(self.history))
            for warning in self.diagnostics:
                log.warning("%s: %s", self.model_name, warning)
        seconds = sum(row["seconds"] for row in self.history)
        n_params, n_quantum = count_parameters(self.model)
        sim_method = simulator_method(self.model, self.device)
        best = self.best
        assert best is not None  # set by the first epoch
        result = FitResult(
            self.model_name, best["epoch"], best["metrics"], test_metrics, n_params, n_quantum,
            round(seconds, 3), self.model_dir, arm=self.arm, test_report=report,
            seconds_per_epoch=round(seconds / max(len(self.history), 1), 3),
            samples_per_s=round(len(self.history) * len(self.data.train) / max(seconds, 1e-9), 1),
            sim_method=sim_method, diagnostics=self.diagnostics, history=self.history,
        )
        if not self.dist.is_main:  # the same result on every rank; rank 0 writes it
            return result
        weights = {
            "format": MODEL_FORMAT,
            "model_name": self.model_name,
            "model_args": self.model_args,
            "arm": self.arm,
            "classes": classes,
            "config": config_to_dict(self.config),
            "state_dict": self.model.state_dict(),
            "sim_method": sim_method,
        }
        atomic_write(self.model_dir / "model.pt", lambda tmp: torch.save(weights, tmp))
        write_json({"status": "finished", **result.as_dict()}, self.model_dir / "summary.json")
        log.info(
            "%s: test accuracy %.4f, balanced accuracy %.4f, macro-F1 %.4f (%.1fs training, %.0f samples/s)",
            self.model_name, test_metrics["accuracy"], test_metrics["balanced_accuracy"], test_metrics["f1"],
            result.seconds, result.samples_per_s,
        )
        return result
