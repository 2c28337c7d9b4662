"""Splits, class weights, wafer-map preparation and the kornia pipelines."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from hqnn.data import (
    RandomRot90Flip,
    class_counts,
    class_weights,
    diana_split,
    eval_pipeline,
    load_or_create_split,
    normalization,
    resize_nearest,
    stratified_split,
    train_pipeline,
    wafer_maps_to_tensor,
)
from hqnn.exceptions import ConfigError, DataError, ShapeError


def test_stratified_split_keeps_class_shares():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    train, val = stratified_split(labels, val_fraction=0.2, seed=1)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    assert np.bincount(labels[val]).tolist() == [10, 6, 4]
    assert np.array_equal(val, stratified_split(labels, 0.2, seed=1)[1])
    assert not np.array_equal(val, stratified_split(labels, 0.2, seed=2)[1])
    with pytest.raises(ConfigError):
        stratified_split(labels, 1.5)


def test_diana_split_matches_the_recipe():
    train, val = diana_split()
    order = list(range(50_000))
    random.Random(42).shuffle(order)
    assert len(train) == 40_000 and val.tolist() == sorted(order[:10_000])
    assert np.all(np.diff(train) > 0)


def test_split_file_is_reused_and_checked(tmp_path):
    labels = np.arange(40) % 4
    path = tmp_path / "split.npz"
    first = load_or_create_split(path, "digits", labels, val_fraction=0.25, seed=0)
    again = load_or_create_split(path, "digits", labels, val_fraction=0.5, seed=9)  # read, not redrawn
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    with pytest.raises(DataError, match="made for dataset 'digits' with 40 items"):
        load_or_create_split(path, "digits", labels[:30])
    with pytest.raises(DataError, match="made for dataset 'digits'"):
        load_or_create_split(path, "mnist", labels)
    train, val = load_or_create_split(tmp_path / "d.npz", "x", np.zeros(50), method="diana", val_fraction=0.2)
    assert len(val) == 10
    with pytest.raises(ConfigError):
        load_or_create_split(tmp_path / "e.npz", "x", labels, method="kfold")


def test_class_counts_and_weights():
    labels = np.array([0, 0, 0, 1, -1, 2, 2, 0])
    assert class_counts(labels, 4).tolist() == [4, 1, 2, 0]
    weights = class_weights(labels, 4)
    counts = class_counts(labels, 4)
    assert weights[3] == 0 and np.isclose((weights * counts).sum(), counts.sum())
    assert weights[1] > weights[2] > weights[0]
    with pytest.raises(DataError, match="labels must lie"):
        class_counts([5], 4)


def test_wafer_resize_invents_no_values():
    rng = np.random.default_rng(0)
    for shape in [(25, 27), (7, 3), (212, 190)]:
        wafer = rng.integers(0, 3, shape).astype(np.uint8)
        for size in (5, 26, 64):
            out = resize_nearest(wafer, size)
            assert out.shape == (size, size) and set(np.unique(out)) <= set(np.unique(wafer))
    identity = rng.integers(0, 3, (9, 9)).astype(np.uint8)
    assert np.array_equal(resize_nearest(identity, 9), identity)
    onehot = wafer_maps_to_tensor([identity, identity[:5]], 8, "onehot")
    assert onehot.shape == (2, 3, 8, 8) and torch.all(onehot.sum(1) == 1)
    scalar = wafer_maps_to_tensor([identity], 9)
    assert torch.equal(scalar[0, 0] * 2, torch.from_numpy(identity).float())
    with pytest.raises(ConfigError):
        wafer_maps_to_tensor([identity], 8, "rgb")


def test_rot90_flip_are_symmetries():
    images = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4).repeat(64, 1, 1, 1)
    out = RandomRot90Flip(generator=torch.Generator().manual_seed(0))(images)
    seen = set()
    for before, after in zip(images, out):
        variants = [torch.rot90(v, k, (-2, -1)) for v in (before, before.flip(-1)) for k in range(4)]
        matches = [i for i, v in enumerate(variants) if torch.equal(v, after)]
        assert matches
        seen.add(matches[0])
    assert len(seen) == 8
    with pytest.raises(ShapeError):
        RandomRot90Flip()(torch.zeros(1, 1, 4, 5))


def test_pipelines_shapes_and_recipe_settings():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    train = train_pipeline(size=16)
    assert train(images).shape == (4, 3, 16, 16)
    extra = torch.full((4, 2, 16, 16), 0.5)
    assert train(images, extra).shape == (4, 5, 16, 16)
    crop, flip, randaugment = train.augment
    assert crop._param_generator.scale == (0.6, 1.0) and flip.p == 0.5 and (randaugment.n, randaugment.m) == (2, 7)
    assert train.erase.p == 0.25 and train.erase.scale == (0.02, 0.08) and train.erase.value == 0
    evaluate = eval_pipeline(size=16)
    out = evaluate(images, extra)
    assert out.shape == (4, 5, 16, 16) and torch.equal(out[:, 3:], extra)  # extra channels pass unchanged
    assert torch.equal(evaluate(images), evaluate(images))
    constant = eval_pipeline(size=8, preset="imagenet")(torch.full((1, 3, 10, 10), 0.485))
    assert torch.allclose(constant[0, 0], torch.zeros(8, 8), atol=1e-6)
    assert isinstance(normalization("none"), torch.nn.Identity)
    with pytest.raises(ConfigError, match="preset"):
        normalization("coco")
    with pytest.raises(ShapeError):
        evaluate(images, torch.zeros(4, 2, 8, 8))


def test_resize_to_skips_a_batch_already_at_size_and_resizes_others():
    import kornia.augmentation as K

    from hqnn.data import ResizeTo

    x = torch.rand(4, 1, 28, 28)
    assert ResizeTo(28)(x) is x
    torch.testing.assert_close(K.Resize((28, 28), antialias=True)(x), x, rtol=0, atol=0)  # why skipping is exact
    y = torch.rand(3, 3, 32, 40)
    torch.testing.assert_close(ResizeTo(16)(y), K.Resize((16, 16), antialias=True)(y), rtol=0, atol=0)
