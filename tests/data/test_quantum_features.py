"""The CIFAR-100 recipe's quantum feature maps: angles, circuits, Pillow parity, cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hqnn.data import cached_quantum_descriptors, extract_qubit_inputs, quantum_descriptors, vec_to_map
from hqnn.data.resample import pil_grayscale, pil_resize

Image = pytest.importorskip("PIL.Image")


def _example_image() -> torch.Tensor:
    image = (np.random.RandomState(0).rand(32, 32, 3) * 255).astype(np.uint8)
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0)  # (1, 3, 32, 32)


def test_angles_match_the_spec_example():
    v = extract_qubit_inputs(_example_image())
    # the spec's numbers come from the recipe's float32 numpy code, which is off by ~1e-5 here
    assert np.allclose(v[0].numpy(), [-1.695243, 0.786310, -0.036075, 0.945007], atol=2e-5)
    assert torch.allclose(extract_qubit_inputs(_example_image().float() / 255), v)


def test_angles_match_a_pillow_reference():
    images = (np.random.RandomState(1).rand(6, 32, 32, 3) * 255).astype(np.uint8)

    def reference(rgb):  # the recipe's extract_qubit_inputs, written with Pillow and numpy
        gray = np.asarray(Image.fromarray(rgb).convert("L").resize((28, 28), Image.BILINEAR), np.float64) / 255
        cells = np.array([gray[r * 14 : (r + 1) * 14, c * 14 : (c + 1) * 14].mean() for r in range(2) for c in range(2)])
        z = (cells - cells.mean()) / (cells.std() + 1e-8)
        return np.clip(z, -3, 3) * math.pi / 3

    ours = extract_qubit_inputs(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    assert np.allclose(ours, np.stack([reference(x) for x in images]), atol=1e-12)


@pytest.mark.parametrize(("size", "out", "filter_name"), [((32, 32), (28, 28), "bilinear"), ((2, 2), (224, 224), "bicubic"), ((28, 28), (64, 64), "bilinear"), ((3, 3), (50, 37), "bicubic")])
def test_resize_equals_pillow(size, out, filter_name):
    images = (np.random.RandomState(2).rand(3, *size) * 255).astype(np.uint8)
    pil_filter = Image.BILINEAR if filter_name == "bilinear" else Image.BICUBIC
    reference = np.stack([np.asarray(Image.fromarray(x).resize((out[1], out[0]), pil_filter)) for x in images])
    assert np.array_equal(pil_resize(torch.from_numpy(images), out, filter_name).numpy(), reference)
    rgb = (np.random.RandomState(3).rand(2, 5, 5, 3) * 255).astype(np.uint8)
    gray = np.stack([np.asarray(Image.fromarray(x).convert("L")) for x in rgb])
    assert np.array_equal(pil_grayscale(torch.from_numpy(rgb).permute(0, 3, 1, 2)).numpy(), gray)


def test_vec_to_map_matches_the_recipe():
    vectors = np.random.RandomState(4).randn(3, 4).astype(np.float32)

    def reference(vec):
        grid = vec.reshape(2, 2)
        grid = (grid - grid.min()) / (grid.max() - grid.min() + 1e-8)
        return np.asarray(Image.fromarray((grid * 255).astype(np.uint8)).resize((20, 20), Image.BICUBIC)) / 255

    maps = vec_to_map(vectors, (20, 20))
    assert maps.shape == (3, 1, 20, 20)
    assert np.allclose(maps[:, 0].numpy(), np.stack([reference(v) for v in vectors]), atol=1e-7)
    assert vec_to_map(np.ones((1, 5), np.float32), (6, 6)).shape == (1, 1, 6, 6)  # 5 values edge-padded to 3x3


def test_descriptors_run_the_recipe_circuits():
    pytest.importorskip("hqnn.sim")
    from hqnn.sim import run
    from hqnn.templates.recipes import diana_edge, diana_texture

    images = torch.from_numpy((np.random.RandomState(5).rand(5, 3, 32, 32) * 255).astype(np.uint8))
    angles = extract_qubit_inputs(images)
    for kind, circuit in (("edge", diana_edge()), ("texture", diana_texture())):
        out = quantum_descriptors(images, kind, batch_size=2, progress=False)
        assert out.shape == (5, 4) and out.dtype == np.float32
        assert np.allclose(out, run(circuit, angles).numpy(), atol=1e-6)


def test_cache_is_reused_and_keyed(tmp_path, monkeypatch):
    pytest.importorskip("hqnn.sim")
    from hqnn.data import quantum_features

    images = torch.from_numpy((np.random.RandomState(6).rand(4, 3, 32, 32) * 255).astype(np.uint8))
    first = cached_quantum_descriptors(images, tmp_path, "toy", "train", "edge", progress=False)
    calls = []
    original = quantum_features.quantum_descriptors
    monkeypatch.setattr(quantum_features, "quantum_descriptors", lambda *a, **k: calls.append(a) or original(*a, **k))
    again = cached_quantum_descriptors(images, tmp_path, "toy", "train", "edge", progress=False)
    assert np.array_equal(first, again) and not calls  # read from the cache
    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1
    cached_quantum_descriptors(changed, tmp_path, "toy", "train", "edge", progress=False)  # new data
    cached_quantum_descriptors(images, tmp_path, "toy", "train", "edge", depth=2, progress=False)  # new circuit
    cached_quantum_descriptors(images, tmp_path, "toy", "val", "edge", progress=False)  # new split
    assert len(calls) == 3 and len(list(tmp_path.glob("*.npz"))) == 4
