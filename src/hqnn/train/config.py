"""The typed experiment configuration: frozen dataclasses, YAML presets and ``key=value`` overrides.

An :class:`ExperimentConfig` has six sections (``model``, ``data``, ``optim``, ``schedule``,
``train``, ``run``); every field has a commented default. A preset is a YAML file holding any subset
of the sections; overrides are ``section.field=value`` strings (``train.epochs=3``), or just
``field=value`` when the field name belongs to one section only (``epochs=3``). Unknown keys and
values of the wrong type raise :class:`~hqnn.exceptions.ConfigError` naming the valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hqnn.data.wafer_maps import WAFER_ENCODINGS, WAFER_RESIZES
from hqnn.exceptions import ConfigError

__all__ = [
    "ModelConfig",
    "DataConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "RunConfig",
    "ExperimentConfig",
    "SECTIONS",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
    "load_yaml",
    "dump_yaml",
]

AUGMENTATIONS = ("none", "flip", "rot90flip", "recipe")
TEST_VIEWS = ("none", "flip", "rot90flip")
SPLIT_METHODS = ("stratified", "diana")
OPTIMIZERS = ("adamw", "adam", "sgd", "nadam")
SCHEDULES = ("none", "onecycle", "cosine")
SELECT_METRICS = ("f1", "accuracy", "loss")
DEVICES = ("cpu", "cuda", "auto")


def _choice(section: str, name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{section}.{name} must be one of {', '.join(choices)}; got {value!r}")


def _at_least(section: str, name: str, value: float | None, low: float, inclusive: bool = True) -> None:
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"{section}.{name} must be a finite number; got {value}")
    if value is not None and (value < low if inclusive else value <= low):
        raise ConfigError(f"{section}.{name} must be {'>=' if inclusive else '>'} {low}; got {value}")


@dataclass(frozen=True)
class ModelConfig:
    """Which model to build (see ``hqnn models``)."""

    name: str = "cnn_qnn"  # registry name
    twin: str | None = None  # classical twin for train.compare; None: "<name>_classical" when registered
    args: dict = field(default_factory=dict)  # builder arguments, e.g. {img_size: 16}; num_classes and
    # in_chans default to the dataset's
    pretrained: str | None = None  # ResNets: torchvision state-dict file (resnet34-b627a593.pth = IMAGENET1K_V1)


@dataclass(frozen=True)
class DataConfig:
    """Which data, how it is split and what the model sees."""

    name: str = "digits"  # hqnn.data registry name
    path: str | None = None  # dataset files; None: $HQNN_DATA/<folder>, or nothing for digits
    train_split: str | None = None  # split to train on; None: the dataset's first (train, or all)
    test_split: str | None = None  # the dataset's test split; None: hold out test_fraction instead
    image_size: int | None = 16  # side length the model sees (resized per batch); None: as stored
    augment: str = "none"  # none | flip | rot90flip (wafer symmetries) | recipe (CIFAR-100 kornia pipeline)
    normalize: str = "none"  # none | imagenet | cifar | mnist (per-channel mean/std)
    val_fraction: float = 0.2  # share of the training data held out for model selection
    split_method: str = "stratified"  # stratified | diana (random.Random(seed) shuffle, spec 4.2)
    split_seed: int = 0  # seed of the split (the split file is reused by later runs)
    test_fraction: float = 0.2  # share held out as the test set when the dataset has no test split
    limit: int | None = None  # keep at most this many items of each split (quick runs, tests)
    class_weights: bool = False  # weight the loss by inverse class frequency of the training split
    class_weight_power: float = 1.0  # class weights ∝ count ** -power (1: inverse frequency; 0.5: inverse sqrt)
    wafer_encoding: str = "scalar"  # wm811k: scalar (1 channel) | onehot (3 channels)
    wafer_resize: str = "nearest"  # wm811k: nearest | max (a cell is the max of the dies it covers: keeps scratches)
    quantum_channels: bool = False  # append the CIFAR-100 recipe's fixed edge/texture maps (spec 4.4)
    # none | flip | rot90flip: test-time average of log-probabilities over these symmetric views
    test_views: str = "none"

    def __post_init__(self) -> None:
        _choice("data", "augment", self.augment, AUGMENTATIONS)
        _choice("data", "test_views", self.test_views, TEST_VIEWS)
        _choice("data", "split_method", self.split_method, SPLIT_METHODS)
        _choice("data", "wafer_encoding", self.wafer_encoding, WAFER_ENCODINGS)
        _choice("data", "wafer_resize", self.wafer_resize, WAFER_RESIZES)
        _at_least("data", "image_size", self.image_size, 1)
        _at_least("data", "limit", self.limit, 1)
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(f"data.{name} must lie in (0, 1); got {getattr(self, name)}")
        if self.augment == "recipe" and self.image_size is None:
            raise ConfigError("data.augment=recipe crops to data.image_size, which must be set; got None")


@dataclass(frozen=True)
class OptimConfig:
    """The optimiser (built over the trainable parameters; weight decay applies to all of them)."""

    name: str = "adam"  # adamw | adam | sgd | nadam
    lr: float = 1e-3  # learning rate (OneCycle replaces it by its own schedule)
    weight_decay: float = 0.0  # decoupled for adamw, L2 for the others
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only

    def __post_init__(self) -> None:
        _choice("optim", "name", self.name, OPTIMIZERS)
        _at_least("optim", "lr", self.lr, 0.0, inclusive=False)
        _at_least("optim", "weight_decay", self.weight_decay, 0.0)
        _at_least("optim", "momentum", self.momentum, 0.0)


@dataclass(frozen=True)
class ScheduleConfig:
    """The learning-rate schedule of each training phase."""

    name: str = "none"  # none | onecycle (stepped every batch) | cosine (stepped every epoch)
    max_lr: float | None = None  # onecycle peak; None: optim.lr
    pct_start: float = 0.3  # onecycle share of steps spent warming up
    min_lr: float = 0.0  # cosine floor

    def __post_init__(self) -> None:
        _choice("schedule", "name", self.name, SCHEDULES)
        _at_least("schedule", "max_lr", self.max_lr, 0.0, inclusive=False)
        _at_least("schedule", "min_lr", self.min_lr, 0.0)
        if not 0.0 < self.pct_start < 1.0:
            raise ConfigError(f"schedule.pct_start must lie in (0, 1); got {self.pct_start}")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop."""

    epochs: int = 5  # total epochs, both phases together
    batch_size: int = 32
    eval_batch_size: int | None = None  # None: 4 x batch_size
    label_smoothing: float = 0.0
    select_metric: str = "f1"  # f1 | accuracy | loss: the best validation epoch is restored (spec 4.2)
    warmup_epochs: int = 0  # two-phase models (set_phase): phase A epochs, then phase B for the rest
    compare: bool = False  # also train the classical twin on the same split and seed
    device: str = "cpu"  # cpu | cuda | auto
    threads: int | None = None  # torch CPU threads (1 avoids oversubscription on a busy machine); None: torch's default
    deterministic: bool = True  # torch.use_deterministic_algorithms (warn-only) during training
    # circuit health (angles, saturation, gradient norms) per epoch for models with a QuantumLayer
    diagnostics: bool = True
    compile: bool = False  # torch.compile the model (eager fallback when compiling fails); pays back on long runs
    channels_last: bool = False  # NHWC memory format for the model's 4-D tensors (faster convs on CPU)
    # pointwise and depthwise convs with one-pixel outputs as a matrix product or weighted sum (same maths)
    small_map_convs: bool = True
    # the spiking CNN's IF neurons and 3x3 convs of 1-4 input channels on native CPU kernels (same maths)
    native_layers: bool = True
    fused_optimizer: bool = True  # AdamW / Adam / SGD as torch's fused kernel, NAdam's foreach (same maths)
    flat_params: bool = True  # the optimiser steps over one flat buffer of all parameters (same maths)

    def __post_init__(self) -> None:
        _at_least("train", "epochs", self.epochs, 1)
        _at_least("train", "batch_size", self.batch_size, 1)
        _at_least("train", "eval_batch_size", self.eval_batch_size, 1)
        _at_least("train", "warmup_epochs", self.warmup_epochs, 0)
        _at_least("train", "threads", self.threads, 1)
        _choice("train", "select_metric", self.select_metric, SELECT_METRICS)
        _choice("train", "device", self.device, DEVICES)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"train.label_smoothing must lie in [0, 1); got {self.label_smoothing}")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(
                f"train.warmup_epochs ({self.warmup_epochs}) must be less than train.epochs ({self.epochs}) "
                "so that phase B has at least one epoch"
            )


@dataclass(frozen=True)
class RunConfig:
    """Where the run is written and how it starts."""

    name: str | None = None  # run directory name under out_dir; None: the preset's name
    out_dir: str = "runs"  # parent of run directories (and of the shared splits/ folder)
    seed: int = 0  # seeds python, numpy, torch and the DataLoader generator
    resume: bool = False  # continue from the run directory's last checkpoint
    progress: bool = True  # tqdm progress bars on stderr when it is a terminal (else one log line per epoch)
    tensorboard: bool = True  # TensorBoard event files in <model dir>/tensorboard/ when tensorboard is installed


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
    "train": TrainConfig,
    "run": RunConfig,
}


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: the six sections plus the preset's name and description."""

    preset: str = "custom"  # name of the preset it came from (the default run directory name)
    description: str = ""  # one line saying what the experiment is
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)


_TOP_LEVEL = ("preset", "description")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _valid_keys() -> list[str]:
    keys = list(_TOP_LEVEL)
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


def _unknown_key(key: str) -> ConfigError:
    valid = _valid_keys()
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    section = key.split(".")[0]
    if section in SECTIONS:
        in_section = ", ".join(k for k in valid if k.startswith(section + "."))
        return ConfigError(f"unknown config key {key!r}{hint}; keys of {section}: {in_section}")
    return ConfigError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(valid)}")


def _coerce(key: str, value: Any, annotation: Any, from_text: bool) -> Any:
    """``value`` checked against (and, for text from the command line, parsed into) ``annotation``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none", "~")):
            return None
        (annotation,) = (a for a in args if a is not type(None))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 3e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation is dict:
        parsed = _parse_yaml_value(value) if from_text and isinstance(value, str) else value
        if isinstance(parsed, Mapping):
            return dict(parsed)
    type_name = getattr(annotation, "__name__", str(annotation))
    raise ConfigError(f"{key} must be {'an' if type_name[0] in 'aeiou' else 'a'} {type_name}; got {value!r}")


def _yaml_problem(exc: Exception) -> str:
    """A YAML parser error on one line: the problem and where it is."""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def _parse_yaml_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse {text!r} as a YAML value: {_yaml_problem(exc)}") from exc


def _build_section(section: str, values: Mapping[str, Any], from_text: bool = False) -> Any:
    cls = SECTIONS[section]
    if not isinstance(values, Mapping):
        raise ConfigError(f"config section {section!r} must be a mapping of keys to values; got {values!r}")
    types_ = _field_types(cls)
    unknown = [k for k in values if k not in types_]
    if unknown:
        raise _unknown_key(f"{section}.{unknown[0]}")
    return cls(**{k: _coerce(f"{section}.{k}", v, types_[k], from_text) for k, v in values.items()})


def config_from_dict(values: Mapping[str, Any]) -> ExperimentConfig:
    """Build a config from a nested mapping (a parsed preset); missing keys keep their defaults.

    Raises:
        ConfigError: an unknown section or key, or a value of the wrong type or out of range.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"a config must be a mapping of sections; got {type(values).__name__}")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS:
            kwargs[key] = _build_section(key, value or {})
        elif key in _TOP_LEVEL:
            kwargs[key] = _coerce(key, value, str, from_text=False)
        else:
            raise _unknown_key(str(key))
    return ExperimentConfig(**kwargs)


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The config as plain nested dicts (what ``config.yaml`` in a run directory holds)."""
    return dataclasses.asdict(config)


def _resolve_key(key: str) -> list[str]:
    """``section.field[.subkey]`` parts for a possibly unqualified key (``epochs`` -> train.epochs)."""
    parts = key.split(".")
    if parts[0] in SECTIONS or parts[0] in _TOP_LEVEL:
        return parts
    owners = [s for s, cls in SECTIONS.items() if parts[0] in _field_types(cls)]
    if len(owners) == 1:
        return [owners[0], *parts]
    if len(owners) > 1:
        raise ConfigError(
            f"config key {key!r} is ambiguous; write one of: {', '.join(f'{s}.{key}' for s in owners)}"
        )
    raise _unknown_key(key)


def apply_overrides(config: ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    """Apply ``key=value`` strings to ``config``.

    Keys are ``section.field`` (``optim.lr=3e-4``), a bare field name that only one section has
    (``epochs=3``), or ``model.args.<name>`` for a model builder argument (``model.args.img_size=16``).
    Values are parsed for the field's type (``none``/``null`` for optional fields; YAML for
    ``model.args``).

    Args:
        config: the starting config.
        overrides: ``key=value`` strings, applied in order.

    Returns:
        A new config.

    Raises:
        ConfigError: a string without ``=``, an unknown or ambiguous key, or a bad value.

    Example:
        >>> apply_overrides(ExperimentConfig(), ["epochs=2", "optim.lr=3e-4"]).train.epochs
        2
    """
    values = config_to_dict(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"overrides must look like key=value (e.g. train.epochs=3); got {item!r}")
        parts = _resolve_key(key.strip())
        if parts == ["preset"]:
            raise ConfigError(
                f"'preset' is not an override (it names the preset a config came from); got {item!r}: "
                f"give the preset as the first argument instead, e.g. hqnn train {text or 'PRESET'}"
            )
        if parts[0] in _TOP_LEVEL:
            if len(parts) > 1:
                raise _unknown_key(".".join(parts))
            values[parts[0]] = text
            continue
        section, name, *sub = parts
        types_ = _field_types(SECTIONS[section])
        if name not in types_ or (sub and types_[name] is not dict) or len(sub) > 1:
            raise _unknown_key(".".join(parts))
        if sub:
            values[section][name] = {**values[section][name], sub[0]: _parse_yaml_value(text)}
        else:
            values[section][name] = _coerce(f"{section}.{name}", text, types_[name], from_text=True)
    return config_from_dict(values)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``.

    Raises:
        ConfigError: the file is missing, is not valid YAML, or does not hold a mapping.
    """
    import yaml

    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not a YAML text file (not UTF-8: {exc.reason} at byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(values, Mapping):
        raise ConfigError(f"{path} must hold a mapping of config sections; got {type(values).__name__}")
    return dict(values)


def dump_yaml(config: ExperimentConfig, path: str | Path) -> None:
    """Write the full resolved config to ``path`` (readable back by :func:`load_yaml`)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
