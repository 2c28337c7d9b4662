"""Datasets, splits and preparation: MNIST/Fashion-MNIST (IDX), CIFAR-10/100 (pickle batches),
WM-811K wafer maps (legacy pandas pickle or converted ``.npz``), scikit-learn's digits and image
folders, all held in memory as :class:`ImageDataset` (uint8 or float images (N, C, H, W), int64
labels); stratified and recipe splits saved to files; kornia augmentation pipelines; wafer-map
resizing and symmetries; and the CIFAR-100 recipe's cached quantum feature maps.

Pickle files can run code when loaded: see :mod:`hqnn.data.wm811k` and ``docs/data.md``.
"""

from hqnn.data.cifar import load_cifar10, load_cifar100
from hqnn.data.dataset import ImageDataset
from hqnn.data.folder import load_digits, load_image_folder
from hqnn.data.idx import load_fashion_mnist, load_mnist, read_idx
from hqnn.data.quantum_features import cached_quantum_descriptors, extract_qubit_inputs, quantum_descriptors, vec_to_map
from hqnn.data.registry import DatasetInfo, dataset_info, list_datasets, load_dataset
from hqnn.data.splits import class_counts, class_weights, diana_split, load_or_create_split, stratified_split
from hqnn.data.transforms import (
    NORMALIZATION_PRESETS,
    ImagePipeline,
    ResizeTo,
    eval_pipeline,
    normalization,
    train_pipeline,
)
from hqnn.data.wafer_maps import RandomRot90Flip, resize_nearest, wafer_maps_to_tensor
from hqnn.data.wm811k import WM811K_CLASSES, WaferMapSet, convert_wm811k, load_wm811k

__all__ = [
    "DatasetInfo",
    "ImageDataset",
    "ImagePipeline",
    "NORMALIZATION_PRESETS",
    "RandomRot90Flip",
    "ResizeTo",
    "WM811K_CLASSES",
    "WaferMapSet",
    "cached_quantum_descriptors",
    "class_counts",
    "class_weights",
    "convert_wm811k",
    "dataset_info",
    "diana_split",
    "eval_pipeline",
    "extract_qubit_inputs",
    "list_datasets",
    "load_cifar10",
    "load_cifar100",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist",
    "load_or_create_split",
    "load_wm811k",
    "normalization",
    "quantum_descriptors",
    "read_idx",
    "resize_nearest",
    "stratified_split",
    "train_pipeline",
    "vec_to_map",
    "wafer_maps_to_tensor",
]
