"""Training: the typed experiment config (six frozen sections, YAML presets, ``key=value``
overrides), the data loaders built from it, a seeded and deterministic trainer (best-validation
restore, per-epoch reports, atomic checkpoints, resume, two-phase training for models with
``set_phase``), and experiments that train a hybrid beside its classical twin on the same split and
seed. ``hqnn train`` and ``hqnn demo`` are thin adapters over :func:`load_config` and
:func:`run_experiment`. A finished model comes back with :func:`load_trained` (its ``model.pt``
into a ready model with its preprocessing and class names), which ``hqnn evaluate`` and
``hqnn predict`` use with :func:`evaluate` and :func:`predict_proba`. :func:`run_study` trains
every arm of a hybrid (itself, its twin, its circuit without entanglement, its frozen circuit) over
several seeds and compares them with intervals and paired tests (``hqnn compare``, ``hqnn demo``).
"""

from hqnn.train.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
)
from hqnn.train.experiment import ExperimentResult, comparison_table, run_experiment, twin_name
from hqnn.train.inference import (
    CircuitSetting,
    TrainedModel,
    evaluate,
    evaluation_data,
    load_trained,
    predict_proba,
    read_images,
    robustness,
)
from hqnn.train.loaders import DataBundle, build_data
from hqnn.train.metrics import classification_metrics
from hqnn.train.presets import DEFAULT_PRESET, list_presets, load_config
from hqnn.train.study import StudyResult, run_study
from hqnn.train.trainer import FitResult, Trainer

__all__ = [
    "CircuitSetting",
    "DEFAULT_PRESET",
    "DataBundle",
    "DataConfig",
    "ExperimentConfig",
    "ExperimentResult",
    "FitResult",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "ScheduleConfig",
    "StudyResult",
    "TrainConfig",
    "TrainedModel",
    "Trainer",
    "apply_overrides",
    "build_data",
    "classification_metrics",
    "comparison_table",
    "config_from_dict",
    "config_to_dict",
    "evaluate",
    "evaluation_data",
    "list_presets",
    "load_config",
    "load_trained",
    "predict_proba",
    "read_images",
    "robustness",
    "run_experiment",
    "run_study",
    "twin_name",
]
