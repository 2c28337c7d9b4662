"""The model zoo: a registry (``create_model``, ``list_models``) and one module per seed family:
SP&A-Net / HCQDL (``hcqdl``), SQDR-CNN (``sqdr``), the Rezk blog CNN+QNN (``cnn_qnn``) and ResNet-18/34
with the CIFAR-100 quantum hybrids (``resnet``, ``resnet_hybrid``). Every model has
``forward_features(x)`` and ``forward_head(feats)``, takes ``num_classes`` and ``in_chans``, and every
hybrid has a classical twin registered beside it (``*_classical``). :mod:`~hqnn.models.arms` turns a
hybrid into a study arm (its circuit without entanglement, or frozen).
"""

from hqnn.models import arms, cnn_qnn, hcqdl, resnet, resnet_hybrid, sqdr
from hqnn.models._registry import (
    ModelEntry,
    create_model,
    get_model_entry,
    list_models,
    register_model,
    register_variants,
)
from hqnn.models.arms import ARMS, apply_arm
from hqnn.models.cnn_qnn import RezkCNN
from hqnn.models.hcqdl import HCQDL, SPANet
from hqnn.models.resnet import ResNet, load_torchvision_weights
from hqnn.models.resnet_hybrid import ResNetQHead
from hqnn.models.sqdr import SQDRCNN

__all__ = [
    "ARMS",
    "HCQDL",
    "ModelEntry",
    "ResNet",
    "ResNetQHead",
    "RezkCNN",
    "SPANet",
    "SQDRCNN",
    "apply_arm",
    "arms",
    "cnn_qnn",
    "create_model",
    "get_model_entry",
    "hcqdl",
    "list_models",
    "load_torchvision_weights",
    "register_model",
    "register_variants",
    "resnet",
    "resnet_hybrid",
    "sqdr",
]
