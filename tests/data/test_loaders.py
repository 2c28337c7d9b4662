"""Loaders on small files written in the real formats, and their bad-input errors."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch
from data_writers import write_cifar_batch, write_idx, write_mnist

from hqnn.data import ImageDataset, dataset_info, list_datasets, load_dataset, read_idx
from hqnn.exceptions import DataError, ShapeError


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_datasets_roundtrip(tmp_path, compress, name):
    content = write_mnist(tmp_path, compress=compress)
    for split in ("train", "test"):
        ds = load_dataset(name, tmp_path, split)
        images, labels = content[split]
        assert ds.images.dtype == torch.uint8 and ds.image_shape == (1, 28, 28)
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
        assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
        image, label = ds[1]
        assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
        assert int(label) == labels[1]


def test_idx_errors_name_the_file(tmp_path):
    write_mnist(tmp_path, compress=False)
    images = tmp_path / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(good[:-10])  # truncated
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", tmp_path)
    images.write_bytes(b"\x01\x02" + good[2:])  # bad magic
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset("mnist", tmp_path)
    images.write_bytes(good)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(3, dtype=np.uint8))  # count mismatch
    with pytest.raises(DataError, match="12 images but .* 3 labels"):
        load_dataset("mnist", tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(12, 10, dtype=np.uint8))  # label out of range
    with pytest.raises(DataError, match=r"labels must lie in \[0, 9\]"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="3 dimensions"):
        read_idx(tmp_path / "train-labels-idx1-ubyte", ndim=3)


def test_idx_missing_and_corrupt_gzip(tmp_path):
    with pytest.raises(DataError, match="missing file"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", tmp_path / "nowhere")
    with pytest.raises(DataError, match="needs path"):
        load_dataset("mnist")
    write_mnist(tmp_path, compress=True)
    gz = tmp_path / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: compressed file is truncated"):
        load_dataset("mnist", tmp_path, "test")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("mnist", tmp_path, "validation")


def _cifar10(tmp_path, n_per_batch=4):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder / name, rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8), {"labels": list(range(n_per_batch))})
    return folder


def test_cifar10(tmp_path):
    folder = _cifar10(tmp_path)
    train = load_dataset("cifar10", tmp_path)  # the parent folder works too
    assert len(train) == 20 and train.image_shape == (3, 32, 32) and train.classes[0] == "airplane"
    raw = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"]
    assert torch.equal(train.images[0].reshape(-1), torch.from_numpy(raw[0]))  # R, G, B planes in order
    assert len(load_dataset("cifar10", folder, "test")) == 4
    write_cifar_batch(folder / "test_batch", np.zeros((2, 3072), np.uint8), {"labels": [0, 10]})
    with pytest.raises(DataError, match=r"test_batch: 'labels' must lie in \[0, 9\]"):
        load_dataset("cifar10", folder, "test")
    write_cifar_batch(folder / "test_batch", np.zeros((2, 100), np.uint8), {"labels": [0, 1]})
    with pytest.raises(DataError, match="test_batch: 'data' must be a \\(N, 3072\\) uint8"):
        load_dataset("cifar10", folder, "test")
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match="test_batch: not a readable pickle"):
        load_dataset("cifar10", folder, "test")


def test_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.arange(3 * 3072, dtype=np.int64).astype(np.uint8).reshape(3, 3072)
    for split in ("train", "test"):
        write_cifar_batch(folder / split, data, {"fine_labels": [0, 57, 99], "coarse_labels": [4, 1, 19]})
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)], b"coarse_label_names": [f"c{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    fine = load_dataset("cifar100", folder)
    assert fine.labels.tolist() == [0, 57, 99] and fine.n_classes == 100 and fine.classes[57] == "fine57"
    coarse = load_dataset("cifar100", tmp_path, "test", label_mode="coarse")
    assert coarse.labels.tolist() == [4, 1, 19] and coarse.classes[19] == "c19"
    with pytest.raises(DataError, match="label_mode"):
        load_dataset("cifar100", folder, label_mode="medium")


def test_restricted_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(pickle.dumps({b"data": Evil()}))
    (folder / "meta").write_bytes(pickle.dumps({}))
    with pytest.raises(DataError, match="refusing to unpickle builtins.print"):
        load_dataset("cifar100", folder)


def test_digits_and_registry():
    assert {"digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "wm811k", "image_folder"} <= set(list_datasets())
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.image_shape == (1, 8, 8) == dataset_info("digits").image_shape
    assert ds.images.min() >= 0 and ds.images.max() == 1.0 and ds.class_counts().sum() == 1797
    assert dataset_info("cifar10").channels == 3
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    sub = ds.subset([0, 5, 7], split="val")
    assert len(sub) == 3 and sub.split == "val"
    with pytest.raises(DataError, match="empty selection"):
        ds.subset([])


def test_image_dataset_validation():
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        ImageDataset(torch.zeros(2, 8, 8), torch.zeros(2), ("a",))
    with pytest.raises(DataError, match="labels must lie"):
        ImageDataset(torch.zeros(2, 1, 8, 8), torch.tensor([0, 3]), ("a", "b"))


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, n in (("cat", 2), ("dog", 3)):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(tmp_path / "train" / cls / f"{i}.png")
    ds = load_dataset("image_folder", tmp_path, "train")
    assert ds.classes == ("cat", "dog") and ds.labels.tolist() == [0, 0, 1, 1, 1] and ds.image_shape == (3, 6, 5)
    gray = load_dataset("image_folder", tmp_path / "train", mode="L", size=(4, 4))
    assert gray.image_shape == (1, 4, 4)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "train" / "dog" / "big.jpg")
    with pytest.raises(DataError, match="different sizes"):
        load_dataset("image_folder", tmp_path, "train")
    (tmp_path / "train" / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: cannot read"):
        load_dataset("image_folder", tmp_path, "train", size=(4, 4))
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="hold no images"):
        load_dataset("image_folder", tmp_path / "empty")


def test_real_mnist(shared_data):
    train = load_dataset("mnist", shared_data / "mnist")
    test = load_dataset("mnist", shared_data / "mnist", "test")
    assert len(train) == 60_000 and len(test) == 10_000
    assert train.class_counts().tolist()[:2] == [5923, 6742]
    assert gzip.open(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz").read()[8] == int(test.labels[0])
