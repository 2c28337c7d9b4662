"""WM-811K: legacy pandas pickles, compression, labels, the .npz conversion, the real sample."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from data_writers import legacy_lswmd_bytes, lswmd_frame, write_lswmd

from hqnn.data import WM811K_CLASSES, convert_wm811k, load_dataset, load_wm811k
from hqnn.exceptions import DataError

pd = pytest.importorskip("pandas")


def test_modern_pandas_cannot_read_the_legacy_layout():
    with pytest.raises(ModuleNotFoundError, match="pandas.indexes"):
        pd.read_pickle(io.BytesIO(legacy_lswmd_bytes(lswmd_frame())))


@pytest.mark.parametrize("suffix", [".pkl", ".pkl.xz", ".pkl.gz"])
@pytest.mark.parametrize("legacy", [True, False])
def test_load_lswmd(tmp_path, suffix, legacy):
    frame = lswmd_frame()
    path = write_lswmd(tmp_path / f"LSWMD{suffix}", frame, legacy=legacy)
    wafers = load_wm811k(path)
    assert len(wafers) == 6  # labelled only by default
    assert [WM811K_CLASSES[i] for i in wafers.labels] == ["Center", "Edge-Ring", "none", "Scratch", "Loc", "none"]
    assert all(np.array_equal(a, b) for a, b in zip(wafers.maps, frame["waferMap"][:6]))
    assert wafers.maps[0].dtype == np.uint8 and wafers.split_tags.tolist()[:2] == ["Training", "Test"]
    everything = load_wm811k(tmp_path, labelled_only=False)  # the folder holding one LSWMD file
    assert len(everything) == 9 and (everything.labels == -1).sum() == 3
    assert len(load_wm811k(path, split="test")) == 3


def test_splits_need_the_tag_column(tmp_path):
    path = write_lswmd(tmp_path / "LSWMD.pkl", lswmd_frame(with_tags=False))
    assert load_wm811k(path).split_tags is None
    with pytest.raises(DataError, match="no trianTestLabel column"):
        load_wm811k(path, split="train")


def test_convert_to_npz_and_back(tmp_path):
    src = write_lswmd(tmp_path / "LSWMD.pkl.xz", lswmd_frame())
    dst = convert_wm811k(src, tmp_path / "out" / "wm")
    assert dst.suffix == ".npz"
    with np.load(dst, allow_pickle=False) as archive:  # readable without pickle
        assert archive["shapes"].shape == (9, 2)
    original, converted = load_wm811k(src, labelled_only=False), load_wm811k(dst, labelled_only=False)
    assert np.array_equal(original.labels, converted.labels)
    assert np.array_equal(original.split_tags, converted.split_tags)
    assert all(np.array_equal(a, b) for a, b in zip(original.maps, converted.maps))
    images = load_dataset("wm811k", dst).to_images(size=16, encoding="onehot")
    assert images.image_shape == (3, 16, 16) and len(images) == 6


def test_bad_wm811k_files(tmp_path):
    frame = lswmd_frame()
    frame.loc[1, "failureType"] = np.array([["Banana"]])
    with pytest.raises(DataError, match="unknown failureType 'Banana'"):
        load_wm811k(write_lswmd(tmp_path / "bad_label.pkl", frame, legacy=False))
    frame = lswmd_frame()
    frame.at[0, "waferMap"] = np.full((4, 4), 7, np.uint8)
    with pytest.raises(DataError, match="values must be 0, 1 or 2"):
        load_wm811k(write_lswmd(tmp_path / "bad_map.pkl", frame, legacy=False))
    (tmp_path / "not_frame.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="expected a pickled pandas DataFrame"):
        load_wm811k(tmp_path / "not_frame.pkl")
    truncated = tmp_path / "truncated.pkl.xz"
    write_lswmd(truncated, lswmd_frame())
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated.pkl.xz: compressed file is truncated"):
        load_wm811k(truncated)
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(DataError, match="broken.npz: not a readable .npz"):
        load_wm811k(tmp_path / "broken.npz")
    frame = lswmd_frame(n_labelled=0)
    with pytest.raises(DataError, match="selection of wafer maps is empty"):
        load_wm811k(write_lswmd(tmp_path / "unlabelled.pkl", frame, legacy=False))


@pytest.fixture(scope="module")
def real_wm811k(shared_data):
    return load_wm811k(shared_data / "wm811k" / "LSWMD_labeled_dev.pkl.xz")


def test_real_wm811k_sample(real_wm811k, tmp_path):
    assert len(real_wm811k) == 49_798
    counts = dict(zip(WM811K_CLASSES, real_wm811k.class_counts().tolist()))
    assert counts == {"none": 29383, "Edge-Ring": 7744, "Edge-Loc": 4151, "Center": 3435, "Loc": 2874,
                      "Scratch": 955, "Random": 693, "Donut": 444, "Near-full": 119}  # fmt: skip
    images = real_wm811k.select(np.arange(500)).to_images(size=32)
    assert images.image_shape == (1, 32, 32)
    assert set(np.unique(images.images.numpy()).tolist()) <= {0.0, 0.5, 1.0}
