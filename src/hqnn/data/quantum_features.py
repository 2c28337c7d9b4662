"""The CIFAR-100 recipe's fixed quantum feature maps (spec section 4.4), batched and cached on disk.

Per image: grayscale (Pillow "L"), bilinear resize to 28x28, /255, the means of the first N cells
of a ceil(sqrt N) grid, z-scored (population std + 1e-8), clipped to [-3, 3], times pi/3: the N
input angles. The ``diana_edge`` and ``diana_texture`` circuits of :mod:`hqnn.templates.recipes`
map them to N expectation values each, and :func:`vec_to_map` turns those into an image channel.

Descriptors are cached as ``.npz`` (no pickle) under a sha256 key of the dataset identity (name,
split, size, a hash of the image bytes), the circuit structure and the settings; a run with the
same key reads the file, and any change gives a new key and a fresh computation. The descriptors
of an image depend on that image alone, so several processes may each compute a strided share
(:func:`descriptor_share`) and :func:`join_shares` puts them back in order; ``compute=`` of
:func:`cached_quantum_descriptors` lets the caller (torchrun's ranks) do so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from hqnn.data.resample import pil_grayscale, pil_resize
from hqnn.exceptions import ConfigError, DataError, ShapeError

__all__ = [
    "extract_qubit_inputs",
    "quantum_descriptors",
    "descriptor_share",
    "join_shares",
    "quantum_cache_file",
    "cached_quantum_descriptors",
    "vec_to_map",
    "FEATURE_MAPS",
]

log = logging.getLogger(__name__)

FEATURE_MAPS = ("edge", "texture")
_CACHE_VERSION = 1


def extract_qubit_inputs(images: torch.Tensor, n_qubits: int = 4, image_size: int = 28) -> torch.Tensor:
    """The recipe's input angles v (B, n_qubits) in [-pi, pi] from RGB images.

    Args:
        images: (B, 3, H, W) uint8, or float in [0, 1] (rounded to 8 bits first, as Pillow sees them).
        n_qubits: number of angles N (cells taken from a ceil(sqrt N) x ceil(sqrt N) grid).
        image_size: side of the bilinear resize (28 in the recipe).

    Returns:
        (B, n_qubits) float64 angles.

    Raises:
        ShapeError: images not (B, 3, H, W). ConfigError: n_qubits < 1 or cells of size 0.

    Example:
        >>> extract_qubit_inputs(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape
        torch.Size([2, 4])
    """
    grid = math.ceil(math.sqrt(n_qubits)) if n_qubits >= 1 else 0
    if grid == 0 or image_size // grid == 0:
        raise ConfigError(f"need n_qubits >= 1 and image_size >= ceil(sqrt(n_qubits)); got {n_qubits}, {image_size}")
    gray = pil_resize(pil_grayscale(images), (image_size, image_size), "bilinear")  # (B, S, S) uint8
    cell = image_size // grid
    # float64: the recipe's float32 numpy code rounds differently depending on summation order,
    # which the z-score amplifies to ~1e-5 in the angles; float64 gives the exact values.
    pixels = gray.to(torch.float64)[:, : grid * cell, : grid * cell] / 255.0
    cells = pixels.reshape(-1, grid, cell, grid, cell).mean(dim=(2, 4)).reshape(-1, grid * grid)  # (B, g*g)
    values = cells[:, :n_qubits]  # (B, N), row-major cells TL, TR, BL, BR, ...
    z = (values - values.mean(dim=1, keepdim=True)) / (values.std(dim=1, unbiased=False, keepdim=True) + 1e-8)
    return z.clamp(-3.0, 3.0) * (math.pi / 3.0)


def _feature_circuit(kind: str, n_qubits: int, depth: int):
    from hqnn.templates.recipes import diana_edge, diana_texture

    if kind == "edge":
        return diana_edge(n_qubits, depth)
    if kind == "texture":
        return diana_texture(n_qubits)
    raise ConfigError(f"feature map must be one of {FEATURE_MAPS}; got {kind!r}")


def quantum_descriptors(
    images: torch.Tensor,
    kind: str = "edge",
    n_qubits: int = 4,
    depth: int = 1,
    image_size: int = 28,
    batch_size: int = 4096,
    progress: bool = True,
) -> np.ndarray:
    """⟨Z⟩ of the recipe's fixed ``edge`` or ``texture`` circuit for every image, in batches.

    Args:
        images: (N, 3, H, W) uint8 or float in [0, 1], the raw un-augmented images.
        kind: ``"edge"`` (RY, CNOT ring x depth, RY/RZ) or ``"texture"`` (H, RX, CNOT star, RY, CZ).
        n_qubits: qubits = angles per image.
        depth: ring repetitions of the edge circuit.
        image_size: resize side for :func:`extract_qubit_inputs`.
        batch_size: images per simulator call.
        progress: show a tqdm progress bar.

    Returns:
        (N, n_qubits) float32.
    """
    from tqdm.auto import tqdm

    from hqnn.sim import run

    circuit = _feature_circuit(kind, n_qubits, depth)
    out = np.empty((images.shape[0], n_qubits), dtype=np.float32)
    for start in tqdm(range(0, images.shape[0], batch_size), desc=f"quantum {kind}", disable=not progress):
        angles = extract_qubit_inputs(images[start : start + batch_size], n_qubits, image_size)  # (b, N)
        out[start : start + batch_size] = run(circuit, angles).numpy()
    return out


def descriptor_share(images: torch.Tensor, rank: int, world_size: int, kind: str = "edge", **options) -> np.ndarray:
    """Share ``rank`` of ``world_size``: :func:`quantum_descriptors` of images ``rank, rank + W, ...``
    (``options`` as :func:`quantum_descriptors`'s keywords)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"a descriptor share needs 0 <= rank < world_size; got rank {rank} of {world_size}")
    return quantum_descriptors(images[rank::world_size], kind, **options)


def join_shares(shares: Sequence[np.ndarray]) -> np.ndarray:
    """The shares of :func:`descriptor_share` for ranks ``0 .. W - 1``, in rank order, put back in
    the images' order: image ``i`` is row ``i // W`` of share ``i % W``.

    Raises:
        ShapeError: shares whose lengths are not those of a strided split, or of different widths.
    """
    world = len(shares)
    total = sum(len(share) for share in shares)
    widths = {share.shape[1:] for share in shares}
    expected = [len(range(rank, total, world)) for rank in range(world)]
    if not world or len(widths) != 1 or [len(share) for share in shares] != expected:
        raise ShapeError(
            f"descriptor shares must hold {expected} rows of one width (a strided split of {total} images); "
            f"got shapes {[tuple(share.shape) for share in shares]}"
        )
    out = np.empty((total, *widths.pop()), dtype=shares[0].dtype)
    for rank, share in enumerate(shares):
        out[rank::world] = share
    return out


def _cache_key(images: torch.Tensor, dataset: str, split: str, kind: str, settings: dict) -> str:
    circuit = _feature_circuit(kind, settings["n_qubits"], settings["depth"])
    identity = {
        "version": _CACHE_VERSION,
        "dataset": dataset,
        "split": split,
        "size": int(images.shape[0]),
        "data_sha256": hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest(),
        "kind": kind,
        "circuit": repr(circuit.structure_key()),
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _cache_place(images, cache_dir, dataset, split, kind, n_qubits, depth, image_size) -> tuple[Path, str]:
    settings = {"n_qubits": n_qubits, "depth": depth, "image_size": image_size}
    key = _cache_key(images, dataset, split, kind, settings)
    return Path(cache_dir) / f"{dataset}_{split}_q_{kind}_{key[:16]}.npz", key


def quantum_cache_file(
    images: torch.Tensor, cache_dir, dataset: str, split: str, kind: str = "edge", n_qubits: int = 4, depth: int = 1,
    image_size: int = 28,
) -> Path:
    """The cache file :func:`cached_quantum_descriptors` reads or writes for these arguments."""
    return _cache_place(images, cache_dir, dataset, split, kind, n_qubits, depth, image_size)[0]


def cached_quantum_descriptors(
    images: torch.Tensor,
    cache_dir,
    dataset: str,
    split: str,
    kind: str = "edge",
    n_qubits: int = 4,
    depth: int = 1,
    image_size: int = 28,
    batch_size: int = 4096,
    progress: bool = True,
    compute: Callable[[torch.Tensor], np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`quantum_descriptors`, read from ``cache_dir`` when computed before with the same key.

    Args:
        images, kind, n_qubits, depth, image_size, batch_size, progress: as :func:`quantum_descriptors`.
        cache_dir: folder for the ``.npz`` cache files.
        dataset: dataset name (part of the key).
        split: split name (part of the key).
        compute: on a cache miss, ``compute(images)`` gives the (N, n_qubits) descriptors instead of
            :func:`quantum_descriptors` (e.g. each rank's :func:`descriptor_share` gathered and
            :func:`join_shares`); it must compute what :func:`quantum_descriptors` would.

    Returns:
        (N, n_qubits) float32.

    Raises:
        DataError: a cache file exists under the key but is unreadable or has the wrong shape.
        ShapeError: ``compute`` returned another shape than (N, n_qubits).
    """
    path, key = _cache_place(images, cache_dir, dataset, split, kind, n_qubits, depth, image_size)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as stored:
                qvec, stored_key = stored["qvec"], str(stored["key"])
        except (OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
            raise DataError(f"{path}: unreadable quantum-descriptor cache ({exc}); delete it to recompute") from exc
        if stored_key == key and qvec.shape == (images.shape[0], n_qubits):
            log.info("read quantum %s descriptors from %s", kind, path)
            return qvec
        raise DataError(f"{path}: cache does not match its key or shape {qvec.shape}; delete it to recompute")
    if compute is None:
        qvec = quantum_descriptors(images, kind, n_qubits, depth, image_size, batch_size, progress)
    else:
        qvec = np.asarray(compute(images), dtype=np.float32)
        if qvec.shape != (images.shape[0], n_qubits):
            raise ShapeError(f"compute must give ({images.shape[0]}, {n_qubits}) descriptors; got {qvec.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.npz")  # an interrupted write never leaves a broken cache
    np.savez(partial, qvec=qvec, key=np.array(key))
    os.replace(partial, path)
    log.info("wrote quantum %s descriptors to %s", kind, path)
    return qvec


def vec_to_map(vectors, size: tuple[int, int] = (224, 224)) -> torch.Tensor:
    """Descriptor vectors (B, N) -> one image channel each (B, 1, H, W) in [0, 1], as the recipe does.

    Edge-pad the N values to g*g (g = ceil(sqrt N)), reshape row-major to g x g, min-max normalise
    ((x - min) / (max - min + 1e-8), in the input's float precision), truncate x*255 to uint8,
    Pillow-bicubic resize to (H, W), /255.

    Args:
        vectors: (B, N) array or tensor.
        size: output (H, W).

    Returns:
        (B, 1, H, W) float32.

    Raises:
        ShapeError: vectors not 2-D.
    """
    values = torch.as_tensor(np.asarray(vectors))
    # keep float32 descriptors in float32, like the recipe's numpy code, so x*255 truncates alike
    values = values if values.is_floating_point() else values.to(torch.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise ShapeError(f"vec_to_map needs (B, N) vectors with N >= 1; got {tuple(values.shape)}")
    grid = math.ceil(math.sqrt(values.shape[1]))
    padded = torch.cat([values, values[:, -1:].expand(-1, grid * grid - values.shape[1])], dim=1)
    low, high = padded.min(dim=1, keepdim=True).values, padded.max(dim=1, keepdim=True).values
    scaled = ((padded - low) / (high - low + 1e-8) * 255).to(torch.uint8)  # truncation, as numpy astype
    maps = pil_resize(scaled.reshape(-1, grid, grid), size, "bicubic")  # (B, H, W)
    return (maps.to(torch.float32) / 255.0).unsqueeze(1)
