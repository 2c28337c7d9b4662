"""Using a trained model: load a ``model.pt`` into a ready model with its preprocessing and class
names, evaluate it on its run's splits or on any supported dataset (also with its circuits under
finite shots or noise), and predict the classes of images.

``model.pt``, written by :class:`~hqnn.train.Trainer` at the end of training, holds ``format``,
``model_name``, ``model_args``, ``arm``, ``classes``, ``config`` (the resolved experiment config:
its data section is the preprocessing: ``image_size``, ``normalize``, ``wafer_encoding``,
``quantum_channels``), ``state_dict`` and ``sim_method``. Files written before ``format`` existed
are read too, with the config taken from the run directory's ``config.yaml``.

Evaluation goes through the trainer's own :func:`~hqnn.train.trainer.run_inference` with the
same loader, batch size, transforms, device and runtime settings, so that the run's own test split
gives exactly the test metrics the run recorded.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hqnn.data import ImageDataset, dataset_info, quantum_descriptors
from hqnn.exceptions import ConfigError, DataError, HQNNError, ShapeError, require
from hqnn.models import create_model
from hqnn.models.arms import apply_arm, quantum_layers
from hqnn.qnn import QuantumLayer
from hqnn.sim.noise import NoiseModel
from hqnn.train.config import ExperimentConfig, config_from_dict, load_yaml
from hqnn.train.loaders import QUANTUM_CHANNEL_MAPS, DataBundle, build_data, build_transforms, load_split, make_loader
from hqnn.train.metrics import full_report
from hqnn.train.trainer import MODEL_FORMAT, resolve_device, run_inference, runtime_settings, score_logits

__all__ = [
    "MODEL_FILE",
    "RUN_SPLITS",
    "CircuitSetting",
    "TrainedModel",
    "read_model_file",
    "find_models",
    "load_trained",
    "evaluation_data",
    "evaluate",
    "with_circuit_setting",
    "robustness",
    "read_images",
    "predict_proba",
]

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
RUN_SPLITS = ("train", "val", "test")  # the splits of the run's own data
_REQUIRED_KEYS = ("model_name", "model_args", "classes", "state_dict")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_model_file(path: str | Path) -> Any:
    """Load a ``.pt`` file onto the CPU with ``weights_only=True`` (tensors and plain containers
    only: a file that would run code when unpickled is refused, not run).

    Raises:
        DataError: the path is missing, not a file, empty, truncated, corrupt or hostile; the
            message is one line.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or hostile file
        raise DataError(f"{path}: not a readable torch file ({type(exc).__name__}: {_one_line(exc)})") from exc


@dataclass
class TrainedModel:
    """A trained model, ready to run, with what it needs to prepare its inputs.

    Attributes:
        model: the network in eval mode on ``device``, with the kept weights.
        model_name: registry name.
        classes: class names, index = output column.
        config: the experiment config it was trained with (``config.data`` = its preprocessing).
        model_args: the builder arguments (``num_classes``, ``in_chans``, ...).
        arm: the comparison arm it was trained as (None for a plain run).
        path: the ``model.pt`` it came from.
        device: where it runs.
    """

    model: nn.Module
    model_name: str
    classes: tuple[str, ...]
    config: ExperimentConfig
    model_args: dict[str, Any]
    arm: str | None
    path: Path
    device: torch.device

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_channels(self) -> int:
        """Channels of the images it reads (its input channels less the two quantum maps, if any)."""
        return int(self.model_args["in_chans"]) - (2 if self.config.data.quantum_channels else 0)

    @property
    def runs_folder(self) -> Path:
        """The runs folder its training data were split in: the nearest folder above it holding
        ``splits/`` (``runs/`` for ``runs/<run>/<model>/model.pt``, also for a study's
        ``runs/<study>/runs/<arm>/seed<k>/model.pt``), else the config's ``run.out_dir``."""
        for folder in self.path.resolve().parents[1:6]:
            if (folder / "splits").is_dir():
                return folder
        return Path(self.config.run.out_dir)

    @property
    def eval_batch_size(self) -> int:
        return self.config.train.eval_batch_size or 4 * self.config.train.batch_size


def find_models(path: str | Path) -> list[Path]:
    """The ``model.pt`` files at ``path``: the file itself, a model folder's, or every one under a
    run or study folder, sorted.

    Raises:
        DataError: nothing there, or a folder with no ``model.pt`` in it or below it.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory (expected a model.pt, a model folder or a run folder)")
    if (path / MODEL_FILE).is_file():
        return [path / MODEL_FILE]
    found = sorted(p for p in path.rglob(MODEL_FILE) if p.is_file())
    if not found:
        raise DataError(f"{path}: no {MODEL_FILE} in it nor below it (expected runs/<run> or runs/<run>/<model>)")
    return found


def _config_of(path: Path, stored: dict) -> ExperimentConfig:
    if "config" in stored:
        if not isinstance(stored["config"], dict):
            raise DataError(f"{path}: 'config' must be a mapping; got {type(stored['config']).__name__}")
        return config_from_dict(stored["config"])
    saved = path.parent.parent / "config.yaml"  # written before model.pt held its config
    if not saved.is_file():
        raise DataError(f"{path}: holds no config and {saved} does not exist; cannot tell how to prepare its inputs")
    return config_from_dict(load_yaml(saved))


def _check_contents(path: Path, stored: Any) -> None:
    if not isinstance(stored, dict) or any(k not in stored for k in _REQUIRED_KEYS):
        keys = sorted(map(str, stored))[:8] if isinstance(stored, dict) else type(stored).__name__
        raise DataError(
            f"{path}: not a trained-model file of `hqnn train` (a model.pt holds {', '.join(_REQUIRED_KEYS)}, "
            f"config, ...); found {keys}"
        )
    expected: dict[str, type | tuple[type, ...]] = {
        "model_name": str, "model_args": dict, "classes": (list, tuple), "state_dict": dict}
    for key, kind in expected.items():
        if not isinstance(stored[key], kind):
            raise DataError(f"{path}: {key!r} has the wrong type ({type(stored[key]).__name__})")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in stored["state_dict"].items()):
        raise DataError(f"{path}: 'state_dict' must map parameter names to tensors")
    if not all(isinstance(k, str) for k in stored["model_args"]):
        raise DataError(f"{path}: 'model_args' must map argument names to values")
    if len(stored["classes"]) != stored["model_args"].get("num_classes", len(stored["classes"])):
        raise DataError(f"{path}: {len(stored['classes'])} class names for a model of "
                        f"{stored['model_args']['num_classes']} classes")
    if stored.get("format", MODEL_FORMAT) != MODEL_FORMAT:
        raise DataError(f"{path}: model file format {stored['format']!r}; this hqnn reads format {MODEL_FORMAT}")


def load_trained(path: str | Path, device: str | torch.device | None = None) -> TrainedModel:
    """Load a ``model.pt`` written by training into a ready model.

    Args:
        path: the ``model.pt`` (or the model's folder holding it).
        device: ``cpu``, ``cuda``, ``auto`` (CUDA when available) or a torch device; None: the
            config's ``train.device``.

    Returns:
        The :class:`TrainedModel`, in eval mode.

    Raises:
        DataError: a missing, unreadable or foreign file, or weights that do not fit the model.
        ConfigError: its config or model is unknown to this version of hqnn; ``cuda`` without CUDA.

    Example:
        >>> trained = load_trained("runs/digits_cnn_qnn/cnn_qnn/model.pt")  # doctest: +SKIP
        >>> trained.classes[:3], trained.model(torch.zeros(1, 1, 16, 16)).shape  # doctest: +SKIP
        (('0', '1', '2'), torch.Size([1, 10]))
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    stored = read_model_file(path)
    _check_contents(path, stored)
    config = _config_of(path, stored)
    arm = stored.get("arm")
    try:
        with torch.random.fork_rng(devices=[]):  # building draws initial weights; leave the caller's RNG as it was
            model = create_model(stored["model_name"], **stored["model_args"])
            if arm is not None:
                apply_arm(model, arm)
    except HQNNError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:  # arguments a builder cannot take
        raise DataError(
            f"{path}: cannot build {stored['model_name']} from its stored arguments ({_one_line(exc)})"
        ) from exc
    try:
        model.load_state_dict(stored["state_dict"])
    except RuntimeError as exc:
        raise DataError(f"{path}: its weights do not fit {stored['model_name']} ({_one_line(exc)})") from exc
    device = resolve_device(device or config.train.device) if not isinstance(device, torch.device) else device
    model.to(device).eval()
    classes = tuple(str(c) for c in stored["classes"])
    return TrainedModel(model, stored["model_name"], classes, config, dict(stored["model_args"]), arm, path, device)


def _match_channels(images: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): RGB to grey by ITU-R 601-2 luma (the weights of Pillow's
    "L" mode), grey to RGB by copying the channel."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 3 and channels == 1:
        luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        grey = (images.to(torch.float32) * luma).sum(dim=1, keepdim=True)
        return grey.round().to(torch.uint8) if images.dtype == torch.uint8 else grey
    if have == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    raise ShapeError(f"{what}: the model reads {channels}-channel images; got {have} channels")


def _map_classes(dataset: ImageDataset, classes: tuple[str, ...]) -> ImageDataset:
    """The labelled items of ``dataset`` with labels renumbered by class name into the model's classes."""
    foreign = [c for c in dataset.classes if c not in classes]
    if foreign:
        raise DataError(
            f"{dataset.name}: classes {foreign[:5]} are not classes of the model; its classes are "
            f"{list(classes[:12])}{' ...' if len(classes) > 12 else ''}"
        )
    to_model = torch.tensor([classes.index(c) for c in dataset.classes], dtype=torch.int64)
    labelled = torch.nonzero(dataset.labels >= 0).flatten()
    if labelled.numel() == 0:
        raise DataError(f"{dataset.name} ({dataset.split}): no labelled items to evaluate on")
    return ImageDataset(
        dataset.images[labelled], to_model[dataset.labels[labelled]], classes,
        name=dataset.name, split=dataset.split, source=dataset.source,
    )


def _bundle(trained: TrainedModel, dataset: ImageDataset) -> DataBundle:
    """Eval-only data for one dataset (it fills the three splits; only the eval transform is used),
    prepared as the model's training data was: resize, normalise, quantum maps."""
    dataset = ImageDataset(
        _match_channels(dataset.images, trained.image_channels, dataset.source or dataset.name),
        dataset.labels, trained.classes, name=dataset.name, split=dataset.split, source=dataset.source,
    )
    image_size = trained.config.data.image_size or dataset.image_shape[-1]
    _, eval_transform = build_transforms(trained.config.data, image_size)
    extras = None
    if trained.config.data.quantum_channels:
        descriptors = [quantum_descriptors(dataset.images, kind, progress=False) for kind in QUANTUM_CHANNEL_MAPS]
        extras = {"test": torch.from_numpy(np.stack(descriptors, axis=1))}  # (N, 2, n_qubits)
    eval_transform.to(trained.device)
    return DataBundle(
        dataset, dataset, dataset, trained.n_classes, int(trained.model_args["in_chans"]),
        eval_transform, eval_transform,
        None, extras, image_size,
    )


def evaluation_data(
    trained: TrainedModel, name: str | None = None, path: str | Path | None = None, split: str | None = None
) -> tuple[DataBundle, str]:
    """The data to evaluate ``trained`` on, and the split of it to use.

    With neither ``name`` nor ``path``: the run's own data (same split files, ``limit`` and
    transforms as in training) and ``split`` one of train, val, test (default test). Otherwise the
    dataset ``name`` (default: the run's) at ``path`` (default: the run's, for the same dataset),
    split ``split`` (default: its test split, else its first), with its classes matched to the
    model's by name and unlabelled items left out.

    Raises:
        DataError: unknown dataset or split, missing files, classes the model does not know.
        ShapeError: images whose channels cannot be matched to the model's.
    """
    config = trained.config
    if name is None and path is None:
        split = split or "test"
        if split not in RUN_SPLITS:
            raise DataError(f"the run's own data has the splits {', '.join(RUN_SPLITS)}; got {split!r} "
                            "(give --data/--path to evaluate on another dataset's splits)")
        data = build_data(config.data, trained.runs_folder, progress=False)
        if tuple(data.train.classes) != trained.classes:
            raise DataError(f"{trained.path}: the run's data now has classes {list(data.train.classes)[:12]}, "
                            f"the model {list(trained.classes)[:12]}")
        data.eval_transform.to(trained.device)
        return data, split
    name = name or config.data.name
    info = dataset_info(name)
    if path is None and name == config.data.name:
        path = config.data.path
    split = split or ("test" if "test" in info.splits else info.splits[0])
    data_config = dataclasses.replace(config.data, name=name, path=None if path is None else str(path))
    dataset = _map_classes(load_split(data_config, split), trained.classes)
    return _bundle(trained, dataset), "test"


def _infer(trained: TrainedModel, data: DataBundle, split: str, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = getattr(data, split)
    loader = make_loader(dataset, trained.eval_batch_size, shuffle=False)

    def prepare(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return data.prepare(split, images, index, training=False)

    with runtime_settings(trained.config.train.deterministic, trained.config.train.threads):
        # the run's test-time views (data.test_views) on every split, as its test pass used them
        return run_inference(model, loader, prepare, trained.device, trained.config.data.test_views)


def evaluate(
    trained: TrainedModel, data: DataBundle, split: str = "test", model: nn.Module | None = None
) -> dict[str, Any]:
    """Score ``trained`` (or ``model``, a variant of it) on one split of ``data``.

    Returns:
        :func:`~hqnn.train.metrics.full_report` (accuracy, balanced accuracy, macro precision,
        recall and F1, per-class table, confusion matrix, one-vs-rest ROC AUC) plus ``loss`` (the
        training criterion; class weights only on the run's own data) and ``n_items``.
    """
    labels, logits = _infer(trained, data, split, trained.model if model is None else model)
    # scored exactly as Trainer._finish scores the test pass
    loss = score_logits(labels, logits, data.class_weights, trained.config.train.label_smoothing)["loss"]
    probabilities = torch.softmax(logits, dim=1)
    report = full_report(labels.numpy(), logits.argmax(dim=1).numpy(), probabilities.numpy(), trained.classes)
    return {**report, "loss": loss, "n_items": int(labels.shape[0])}


@dataclass(frozen=True)
class CircuitSetting:
    """How to run a model's circuits: exact (both None), with ``shots`` samples, or under ``noise``.

    Attributes:
        label: what the setting is called in tables (``"exact"``, ``"shots=100"``, ``"depolarizing=0.01"``).
        shots: samples per measurement, or None for exact expectations.
        noise: a noise model added to every circuit, or None.
    """

    label: str
    shots: int | None = None
    noise: NoiseModel | None = None


def with_circuit_setting(model: nn.Module, setting: CircuitSetting, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose every :class:`~hqnn.qnn.QuantumLayer` runs under ``setting``,
    with its trained weights (shots are drawn from a generator seeded with ``seed``).

    Raises:
        ConfigError: the model has no circuit layer.
    """
    variant = copy.deepcopy(model)
    layers = quantum_layers(variant)
    if not layers:
        raise ConfigError(f"{type(model).__name__} has no circuit layer; shots and noise settings apply to hybrids")
    generator = torch.Generator().manual_seed(seed)
    for name, layer in layers:
        rebuilt = QuantumLayer(
            layer.circuit, init=layer.init, init_kwargs=layer.init_kwargs, method=layer.method,
            shots=setting.shots, noise_model=setting.noise, generator=generator,
        )
        with torch.no_grad():
            rebuilt.weights.copy_(layer.weights)
        rebuilt.weights.requires_grad_(layer.weights.requires_grad)
        parent, _, child = name.rpartition(".")
        setattr(variant.get_submodule(parent), child, rebuilt.to(layer.weights.device))
    return variant.eval()


def robustness(
    trained: TrainedModel, data: DataBundle, split: str, settings: Sequence[CircuitSetting], seed: int = 0
) -> list[dict[str, Any]]:
    """One row per setting: ``setting``, ``accuracy``, ``balanced_accuracy``, ``f1``, ``roc_auc_ovr``, ``loss``.

    Raises:
        ConfigError: the model has no circuit layer.
    """
    rows = []
    for setting in settings:
        model = trained.model if setting.shots is None and setting.noise is None else with_circuit_setting(
            trained.model, setting, seed)
        report = evaluate(trained, data, split, model)
        keys = ("accuracy", "balanced_accuracy", "f1", "roc_auc_ovr", "loss")
        rows.append({"setting": setting.label, **{k: report[k] for k in keys}})
        log.info("%s under %s: accuracy %.4f", trained.model_name, setting.label, report["accuracy"])
    return rows


def _as_images(array: np.ndarray, channels: int, source: str) -> torch.Tensor:
    """An image array in any usual layout -> float (N, channels, H, W) in [0, 1].

    Accepted: (H, W), (C, H, W), (H, W, C), (N, H, W) (grey), (N, C, H, W), (N, H, W, C), with
    C of 1 or 3 (a leading 1 or 3 is read as C); uint8 (or integers 0..255) scaled by 1/255, floats taken as [0, 1].
    """
    if array.dtype.kind in "iub":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise DataError(f"{source}: integer images must hold 0..255; got {array.min()}..{array.max()}")
        images = torch.from_numpy(array.astype(np.float32) / 255.0)
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise DataError(f"{source}: the images hold NaN or infinite values")
        images = torch.from_numpy(array.astype(np.float32))
    else:
        raise DataError(f"{source}: images must be integers or floats; got dtype {array.dtype}")
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 3:
        if images.shape[0] in (1, 3):
            images = images[None]  # (C, H, W)
        elif images.shape[-1] in (1, 3):
            images = images.permute(2, 0, 1)[None]  # (H, W, C)
        else:
            images = images[:, None]  # (N, H, W): grey images
    elif images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
        images = images.permute(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ShapeError(f"{source}: expected images (H, W), (C, H, W), (H, W, C) or a stack of them with 1 or 3 "
                         f"channels; got shape {tuple(array.shape)}")
    return _match_channels(images, channels, source)


def _read_file(path: Path, channels: int) -> tuple[torch.Tensor, bool]:
    """One file -> (float (N, channels, H, W) in [0, 1], whether it holds a stack of images)."""
    suffix = path.suffix.lower()
    if suffix in _IMAGE_SUFFIXES:
        image_module = require("PIL.Image", "plot")
        try:
            with image_module.open(path) as image:
                array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the image ({_one_line(exc)})") from exc
        return _as_images(array, channels, str(path)), False
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable .npy array ({_one_line(exc)})") from exc
        images = _as_images(array, channels, str(path))
        return images, array.ndim == 4 or images.shape[0] > 1
    if "idx3-ubyte" in path.name:
        from hqnn.data import read_idx

        return _as_images(read_idx(path, 3), channels, str(path)), True
    raise DataError(f"{path}: unsupported file; give PNG/JPEG images, .npy arrays, IDX image files or folders of them")


def read_images(paths: Sequence[str | Path], channels: int) -> list[tuple[str, torch.Tensor]]:
    """Read images for prediction: PNG/JPEG files, ``.npy`` arrays (one image or a stack), IDX image
    files (``*idx3-ubyte[.gz]``), or folders of them (searched recursively, in sorted order).

    Args:
        paths: files and folders.
        channels: channels the model reads (RGB and grey are converted to it).

    Returns:
        ``(name, image (channels, H, W) float in [0, 1])`` per item; an item of a stack is named ``file[i]``.

    Raises:
        DataError: a missing or unreadable file, an empty folder, NaN values.
        ShapeError: an array that is not an image or a stack of images.
    """
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found = sorted(p for p in entry.rglob("*") if p.is_file() and (
                p.suffix.lower() in (*_IMAGE_SUFFIXES, ".npy") or "idx3-ubyte" in p.name))
            if not found:
                raise DataError(f"{entry}: the folder holds no PNG/JPEG images, .npy arrays or IDX image files")
            files += found
        elif entry.is_file():
            files.append(entry)
        else:
            raise DataError(f"{entry}: no such file or directory")
    items: list[tuple[str, torch.Tensor]] = []
    for file in files:
        images, stack = _read_file(file, channels)
        items += [(f"{file}[{i}]", image) for i, image in enumerate(images)] if stack else [(str(file), images[0])]
    return items


def predict_proba(trained: TrainedModel, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Class probabilities of images prepared as the model's training data were.

    Args:
        trained: the model.
        images: float (C, H, W) images in [0, 1] with ``trained.image_channels`` channels; sizes may differ.

    Returns:
        (N, n_classes) float64 probabilities, in the order of ``images``.
    """
    if not images:
        raise DataError("no images to predict")
    probabilities = torch.empty(len(images), trained.n_classes, dtype=torch.float64)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(i)
    for positions in by_shape.values():
        stack = torch.stack([images[i] for i in positions])  # (n, C, H, W)
        dataset = ImageDataset(stack, torch.full((len(positions),), -1), trained.classes, name="predict", split="test")
        _, logits = _infer(trained, _bundle(trained, dataset), "test", trained.model)
        probabilities[positions] = torch.softmax(logits.double(), dim=1)
    return probabilities
