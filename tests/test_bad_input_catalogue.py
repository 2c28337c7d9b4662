"""The bad-input catalogue: every CLI command and public entry point, given each kind of bad input.

Kinds: wrong shapes, NaN/inf, negative or zero sizes, unknown names, missing / empty / truncated /
corrupt / wrong-format files, hostile pickles and checkpoints, unwritable outputs, too many qubits
for memory, missing CUDA. Every case must end in a typed :class:`~hqnn.exceptions.HQNNError` whose
message says what was expected and what was given; on the command line, exit status 2 with the
error on one line, no traceback, and nothing written (the shared ``splits/`` cache under
``run.out_dir`` aside: it is written with the data, before the model is checked).

A case that fails because of a bug in a module this catalogue does not own is marked ``xfail`` with
the reason (strict, so that the mark goes once the bug is fixed). The number of cases run is printed
at the end of the session (``-rA`` or ``-s`` shows it) and checked by the last test.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import pickle
import shlex
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from hqnn.cli import main
from hqnn.exceptions import (
    ConfigError,
    DataError,
    GateError,
    HQNNError,
    ResourceError,
    ShapeError,
    ValueRangeError,
    WireError,
)

MIN_CASES = 150
HAS_CUDA = torch.cuda.is_available()
_RAN: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _report_count(request):
    """At the end of the module, report how many catalogue cases ran clean (on the terminal, uncaptured)."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nbad-input catalogue: {len(_RAN)} cases ran and were clean ({len(CLI_CASES)} "
                                f"CLI + {len(LIB_CASES)} library cases catalogued; xfailed and skipped ones not counted)")


# ---------------------------------------------------------------------------------------------------
# the bad files (written once per module, read-only for the cases; every case checks they are unchanged)

def _hostile_pickle(marker: Path) -> bytes:
    """A pickle that would run ``os.system("touch marker")`` (written by opcodes: building it runs nothing)."""
    command = f"touch {marker}".encode()
    return b"\x80\x02cos\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _idx(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    return bytes([0, 0, magic_type, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape) + \
        array.astype(np.uint8).tobytes()


def _mnist_folder(root: Path, images: bytes | None = None, labels: bytes | None = None, gz: bool = False) -> Path:
    root.mkdir(parents=True)
    good_images, good_labels = _idx(np.zeros((3, 28, 28), np.uint8)), _idx(np.arange(3, dtype=np.uint8))
    for prefix in ("train", "t10k"):
        for kind, data in (("images-idx3", images or good_images), ("labels-idx1", labels or good_labels)):
            name = f"{prefix}-{kind}-ubyte"
            (root / (name + ".gz" if gz else name)).write_bytes(data)
    return root


def _cifar10_folder(root: Path, batch: bytes) -> Path:
    root.mkdir(parents=True)
    good = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2)
    for i in range(1, 6):
        (root / f"data_batch_{i}").write_bytes(batch if i == 3 else good)
    (root / "test_batch").write_bytes(good)
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    p: dict[str, Path] = {"root": root, "missing": root / "missing.bin", "pwned": root / "pwned"}

    def file(name: str, data: bytes) -> Path:
        path = root / name
        path.write_bytes(data)
        return path

    p["empty"] = file("empty.bin", b"")
    p["text"] = file("text.txt", b"hello, this is not a dataset\n")
    p["garbage"] = file("garbage.bin", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    p["afile"] = file("afile", b"a regular file where a folder is expected")
    (root / "somedir").mkdir()
    p["dir"] = root / "somedir"
    # checkpoints / weights files
    good_pt = root / "good.pt"
    torch.save({"weights": torch.zeros(8)}, good_pt)
    data = good_pt.read_bytes()
    p["pt_trunc"] = file("trunc.pt", data[: len(data) // 2])
    flipped = bytearray(data)
    for i in range(len(flipped) // 3, len(flipped) // 3 + 64):
        flipped[i] ^= 0xFF
    p["pt_corrupt"] = file("corrupt.pt", bytes(flipped))
    torch.save(_Evil(p["pwned"]), root / "hostile.pt")
    p["pt_hostile"] = root / "hostile.pt"
    torch.save({"foo": torch.zeros(3), "bar": 1}, root / "wrong.pt")
    p["pt_wrong"] = root / "wrong.pt"
    # pickles
    p["pkl_hostile"] = file("LSWMD.pkl", _hostile_pickle(p["pwned"]))
    (root / "wm_list").mkdir()
    p["pkl_list"] = root / "wm_list" / "LSWMD.pkl"
    p["pkl_list"].write_bytes(pickle.dumps([1, 2, 3]))
    p["xz_trunc"] = file("LSWMD_trunc.pkl.xz", lzma.compress(pickle.dumps(list(range(5000))))[:200])
    p["pkl_empty"] = file("LSWMD_empty.pkl", b"")
    import pandas as pd

    frame = pd.DataFrame({"waferMap": [np.ones((5, 6), np.uint8), np.full((4, 4), 2, np.uint8)],
                          "failureType": [np.array([["Center"]]), np.array([["none"]])]})
    (root / "wm_good").mkdir()
    p["pkl_good"] = root / "wm_good" / "LSWMD.pkl"
    p["pkl_good"].write_bytes(pickle.dumps(frame))
    p["npz_bad"] = file("LSWMD_bad.npz", b"PK\x03\x04 this is not a zip archive")
    np.savez(root / "LSWMD_wrong.npz", a=np.zeros(3))
    p["npz_wrong"] = root / "LSWMD_wrong.npz"
    # IDX folders
    p["mnist_trunc"] = _mnist_folder(root / "mnist_trunc", images=_idx(np.zeros((3, 28, 28), np.uint8))[:500])
    p["mnist_magic"] = _mnist_folder(root / "mnist_magic", images=b"\x12\x34" + _idx(np.zeros((3, 28, 28)))[2:])
    p["mnist_gz"] = _mnist_folder(root / "mnist_gz", images=gzip.compress(_idx(np.zeros((3, 28, 28))))[:40], gz=True)
    p["mnist_count"] = _mnist_folder(root / "mnist_count", labels=_idx(np.arange(5, dtype=np.uint8)))
    p["mnist_empty"] = _mnist_folder(root / "mnist_emptyfiles", images=b"\0", labels=b"\0")
    # CIFAR folders
    p["cifar_trunc"] = _cifar10_folder(root / "cifar_trunc", pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)})[:100])
    memmap = b"\x80\x02cnumpy\nmemmap\nX" + len(str(p["pwned"])).to_bytes(4, "little") + str(p["pwned"]).encode() + \
        b"X\x02\x00\x00\x00w+\x86R."
    p["cifar_memmap"] = _cifar10_folder(root / "cifar_memmap", memmap)
    p["cifar_text"] = _cifar10_folder(root / "cifar_text", b"this is not a pickle")
    p["cifar_shape"] = _cifar10_folder(root / "cifar_shape", pickle.dumps({b"data": np.zeros((2, 100), np.uint8),
                                                                           b"labels": [0, 1]}))
    p["cifar_labels"] = _cifar10_folder(root / "cifar_labels", pickle.dumps({b"data": np.zeros((2, 3072), np.uint8),
                                                                             b"labels": [0, 10]}))
    p["cifar_list"] = _cifar10_folder(root / "cifar_list", pickle.dumps([1, 2]))
    c100 = root / "cifar100_hostile"
    c100.mkdir()
    (c100 / "train").write_bytes(_hostile_pickle(p["pwned"]))
    (c100 / "test").write_bytes(_hostile_pickle(p["pwned"]))
    (c100 / "meta").write_bytes(pickle.dumps({"fine_label_names": [str(i) for i in range(100)]}))
    p["cifar100_hostile"] = c100
    # image folders and image files
    folder = root / "images_corrupt" / "cat"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    p["images_corrupt"] = root / "images_corrupt"
    p["png_corrupt"] = folder / "a.png"
    np.save(root / "wrong_shape.npy", np.zeros((3, 5, 7, 2, 2)))
    p["npy_wrong"] = root / "wrong_shape.npy"
    np.save(root / "nan.npy", np.full((1, 8, 8), np.nan))
    p["npy_nan"] = root / "nan.npy"
    # YAML configs
    p["yaml_bad"] = file("bad.yaml", b"train: [epochs: 3\n  : : :\n")
    p["yaml_list"] = file("list.yaml", b"- 1\n- 2\n")
    p["yaml_unknown"] = file("unknown.yaml", b"training:\n  epochs: 3\n")
    p["yaml_type"] = file("type.yaml", b"train:\n  epochs: three\n")
    p["yaml_empty"] = file("empty.yaml", b"")
    p["yaml_section"] = file("section.yaml", b"train: 5\n")
    # benchmark report that cannot be read (must not be overwritten)
    p["json_bad"] = file("report.json", b"{not json")
    # run directories to resume: the right config, and a damaged or wrong checkpoint
    from hqnn.train.config import dump_yaml
    from hqnn.train.presets import load_config

    for name, checkpoint in (("resume_trunc", p["pt_trunc"]), ("resume_corrupt", p["pt_corrupt"]),
                             ("resume_hostile", p["pt_hostile"]), ("resume_empty", p["empty"]),
                             ("resume_wrong", p["pt_wrong"]), ("resume_differs", None)):
        run = root / "runs" / name
        (run / "cnn_qnn").mkdir(parents=True)
        config = load_config("digits_cnn_qnn", [*TRAIN_OVERRIDES, f"run.out_dir={root / 'runs'}", f"run.name={name}"])
        dump_yaml(config, run / "config.yaml")
        if checkpoint is not None:
            (run / "cnn_qnn" / "checkpoint.pt").write_bytes(checkpoint.read_bytes())
        p[name] = run
    p["runs"] = root / "runs"
    return p


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real (tiny) trained run: model.pt for evaluate / predict / export --model."""
    out = tmp_path_factory.mktemp("trained")
    code = main(["train", "digits_cnn_qnn", *TRAIN_OVERRIDES, "train.compare=false", f"run.out_dir={out}",
                 "run.name=run"])
    assert code == 0
    return out / "run"


def _snapshot(*roots: Path) -> dict[str, str]:
    """Every file's hash and every empty folder under ``roots`` (a folder left behind shows up)."""
    state = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if "splits" in path.relative_to(root).parts:
                continue
            if path.is_file():
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir() and not any(path.iterdir()):
                state[str(path)] = "empty folder"
    return state


# ---------------------------------------------------------------------------------------------------
# the command line

# the preset's data with a pinned small model (the preset's own model may change), one quick epoch
TRAIN_OVERRIDES = ("model.name=cnn_qnn", "model.twin=cnn_qnn_classical", "epochs=1", "data.limit=40",
                   "run.progress=false", "run.tensorboard=false")
TRAIN = "train digits_cnn_qnn " + " ".join(TRAIN_OVERRIDES) + " run.out_dir={out}/runs"
COMPARE = "compare {options} digits_cnn_qnn " + " ".join(TRAIN_OVERRIDES) + " run.out_dir={{out}}/runs"
NOT_MINE = "bug in a module this catalogue does not own: "


@dataclass(frozen=True)
class Cli:
    id: str
    argv: str  # formatted with the input files, {out} (an empty folder) and {model}/{run} (a trained run)
    xfail: str | None = None
    needs: str | None = None  # "cuda-less", "root" or "trained"

    def param(self):
        marks = [pytest.mark.xfail(reason=self.xfail, strict=True)] if self.xfail else []
        if self.needs == "cuda-less" and HAS_CUDA:
            marks.append(pytest.mark.skip(reason="CUDA is available on this machine"))
        return pytest.param(self, id=self.id, marks=marks)


CLI_CASES = [
    # top level and models
    Cli("unknown-command", "nosuch"),
    Cli("models-negative-classes", "models --num-classes -3"),
    Cli("models-zero-classes", "models --num-classes 0"),
    Cli("models-zero-channels", "models --in-chans 0"),
    Cli("models-text-classes", "models --num-classes many"),
    Cli("models-no-match", "models 'zzz*'"),
    # data
    Cli("data-unknown-action", "data nosuch"),
    Cli("data-unknown-dataset", "data info nosuch"),
    Cli("data-mnist-missing", "data info mnist --path {missing}"),
    Cli("data-mnist-empty-folder", "data info mnist --path {dir}"),
    Cli("data-mnist-a-file", "data info mnist --path {text}"),
    Cli("data-mnist-truncated", "data info mnist --path {mnist_trunc}"),
    Cli("data-mnist-bad-magic", "data info mnist --path {mnist_magic}"),
    Cli("data-mnist-corrupt-gzip", "data info mnist --path {mnist_gz}"),
    Cli("data-mnist-count-mismatch", "data info mnist --path {mnist_count}"),
    Cli("data-mnist-one-byte-files", "data info mnist --path {mnist_empty}"),
    Cli("data-fashion-missing", "data info fashion_mnist --path {missing}"),
    Cli("data-cifar10-missing", "data info cifar10 --path {missing}"),
    Cli("data-cifar10-empty-folder", "data info cifar10 --path {dir}"),
    Cli("data-cifar10-truncated", "data info cifar10 --path {cifar_trunc}"),
    Cli("data-cifar10-memmap-payload", "data info cifar10 --path {cifar_memmap}"),
    Cli("data-cifar10-not-a-pickle", "data info cifar10 --path {cifar_text}"),
    Cli("data-cifar10-wrong-shape", "data info cifar10 --path {cifar_shape}"),
    Cli("data-cifar10-label-range", "data info cifar10 --path {cifar_labels}"),
    Cli("data-cifar10-not-a-dict", "data info cifar10 --path {cifar_list}"),
    Cli("data-cifar100-missing", "data info cifar100 --path {missing}"),
    Cli("data-cifar100-hostile", "data info cifar100 --path {cifar100_hostile}"),
    Cli("data-wm811k-missing", "data info wm811k --path {missing}"),
    Cli("data-wm811k-empty-file", "data info wm811k --path {pkl_empty}"),
    Cli("data-wm811k-truncated-xz", "data info wm811k --path {xz_trunc}"),
    Cli("data-wm811k-hostile", "data info wm811k --path {pkl_hostile}"),
    Cli("data-wm811k-not-a-frame", "data info wm811k --path {pkl_list}"),
    Cli("data-wm811k-corrupt-npz", "data info wm811k --path {npz_bad}"),
    Cli("data-wm811k-wrong-npz", "data info wm811k --path {npz_wrong}"),
    Cli("data-wm811k-wrong-format", "data info wm811k --path {text}"),
    Cli("data-folder-missing", "data info folder --path {missing}"),
    Cli("data-folder-empty", "data info folder --path {dir}"),
    Cli("data-folder-corrupt-image", "data info folder --path {images_corrupt}"),
    Cli("data-convert-missing", "data convert-wm811k {missing} {out}/w.npz"),
    Cli("data-convert-hostile", "data convert-wm811k {pkl_hostile} {out}/w.npz"),
    Cli("data-convert-truncated", "data convert-wm811k {xz_trunc} {out}/w.npz"),
    Cli("data-convert-not-a-frame", "data convert-wm811k {pkl_list} {out}/w.npz"),
    Cli("data-convert-dst-under-file", "data convert-wm811k {pkl_good} {afile}/w.npz"),
    Cli("data-convert-dst-is-folder", "data convert-wm811k {pkl_good} {out}"),
    # train: the config
    Cli("train-unknown-preset", "train nosuch"),
    Cli("train-missing-yaml", "train {missing}.yaml"),
    Cli("train-invalid-yaml", "train {yaml_bad}"),
    Cli("train-yaml-list", "train {yaml_list}"),
    Cli("train-yaml-unknown-section", "train {yaml_unknown}"),
    Cli("train-yaml-wrong-type", "train {yaml_type}"),
    Cli("train-yaml-empty", "train {yaml_empty}"),
    Cli("train-yaml-section-not-mapping", "train {yaml_section}"),
    Cli("train-show-unknown-preset", "train --show nosuch"),
    Cli("train-override-without-equals", TRAIN + " epochs"),
    Cli("train-unknown-key", TRAIN + " foo=1"),
    Cli("train-unknown-section-key", TRAIN + " train.foo=1"),
    Cli("train-ambiguous-key", TRAIN + " name=x"),
    Cli("train-preset-override", TRAIN + " preset=foo"),
    Cli("train-preset-subkey", TRAIN + " preset.x=1"),
    Cli("train-epochs-zero", TRAIN + " epochs=0"),
    Cli("train-epochs-negative", TRAIN + " epochs=-2"),
    Cli("train-epochs-text", TRAIN + " epochs=three"),
    Cli("train-batch-zero", TRAIN + " batch_size=0"),
    Cli("train-eval-batch-negative", TRAIN + " eval_batch_size=-1"),
    Cli("train-lr-nan", TRAIN + " optim.lr=nan"),
    Cli("train-lr-inf", TRAIN + " optim.lr=inf"),
    Cli("train-lr-zero", TRAIN + " optim.lr=0"),
    Cli("train-lr-negative", TRAIN + " optim.lr=-0.1"),
    Cli("train-weight-decay-negative", TRAIN + " optim.weight_decay=-1"),
    Cli("train-momentum-nan", TRAIN + " optim.momentum=nan"),
    Cli("train-max-lr-negative", TRAIN + " schedule.name=onecycle schedule.max_lr=-0.01"),
    Cli("train-max-lr-inf", TRAIN + " schedule.max_lr=inf"),
    Cli("train-pct-start", TRAIN + " schedule.pct_start=1.5"),
    Cli("train-min-lr-negative", TRAIN + " schedule.min_lr=-1"),
    Cli("train-unknown-optimizer", TRAIN + " optim.name=lbfgs"),
    Cli("train-unknown-schedule", TRAIN + " schedule.name=step"),
    Cli("train-unknown-dataset", TRAIN + " data.name=imagenet"),
    Cli("train-val-fraction-zero", TRAIN + " data.val_fraction=0"),
    Cli("train-val-fraction-nan", TRAIN + " data.val_fraction=nan"),
    Cli("train-image-size-zero", TRAIN + " data.image_size=0"),
    Cli("train-limit-zero", TRAIN + " data.limit=0"),
    Cli("train-unknown-augment", TRAIN + " data.augment=mixup"),
    Cli("train-label-smoothing-one", TRAIN + " train.label_smoothing=1"),
    Cli("train-warmup-too-long", TRAIN + " train.warmup_epochs=3"),
    Cli("train-threads-zero", TRAIN + " train.threads=0"),
    Cli("train-unknown-device", TRAIN + " train.device=tpu"),
    Cli("train-cuda-missing", TRAIN + " train.device=cuda", needs="cuda-less"),
    Cli("train-unknown-select-metric", TRAIN + " train.select_metric=auc"),
    Cli("train-bool-text", TRAIN + " train.compare=maybe"),
    # train: the model
    Cli("train-unknown-model", TRAIN + " model.name=nope"),
    Cli("train-unknown-twin", TRAIN + " model.twin=nope"),
    Cli("train-negative-classes", TRAIN + " model.args.num_classes=-3"),
    Cli("train-zero-classes", TRAIN + " model.args.num_classes=0"),
    Cli("train-zero-channels", TRAIN + " model.args.in_chans=0"),
    Cli("train-unknown-model-arg", TRAIN + " model.args.foo=1"),
    Cli("train-model-args-not-mapping", TRAIN + " model.args=[1,2]"),
    Cli("train-image-too-small", TRAIN + " data.image_size=4"),
    Cli("train-pretrained-not-resnet", TRAIN + " model.pretrained={garbage}"),
    Cli("train-pretrained-corrupt", TRAIN + " model.name=resnet18_small train.compare=false model.pretrained={garbage}"),
    Cli("train-pretrained-missing", TRAIN + " model.name=resnet18_small train.compare=false model.pretrained={missing}"),
    # train: the data
    Cli("train-mnist-missing", TRAIN + " data.name=mnist data.path={missing}"),
    Cli("train-mnist-truncated", TRAIN + " data.name=mnist data.path={mnist_trunc}"),
    Cli("train-cifar-hostile", TRAIN + " data.name=cifar10 data.path={cifar_memmap}"),
    Cli("train-wm811k-hostile", TRAIN + " data.name=wm811k data.path={pkl_hostile}"),
    Cli("train-wm811k-corrupt-npz", TRAIN + " data.name=wm811k data.path={npz_bad}"),
    Cli("train-unknown-split", TRAIN + " data.train_split=validation"),
    # train: the output folder
    Cli("train-out-dir-under-file", TRAIN + " run.out_dir={afile}/runs"),
    Cli("train-out-dir-is-file", TRAIN + " run.out_dir={afile}"),
    Cli("train-out-dir-cannot-create", TRAIN + " run.out_dir=/proc/hqnn-catalogue/runs"),
    Cli("train-run-name-escapes", TRAIN + " run.name=../../escape"),
    Cli("train-run-name-absolute", TRAIN + " run.name=/tmp/hqnn-absolute"),
    # train: resuming
    Cli("train-resume-nothing", TRAIN + " run.resume=true run.name=never-ran"),
    Cli("train-resume-config-differs", TRAIN + " run.resume=true run.out_dir={runs} run.name=resume_differs optim.lr=0.5"),
    Cli("train-resume-truncated-checkpoint", TRAIN + " run.resume=true run.out_dir={runs} run.name=resume_trunc"),
    Cli("train-resume-corrupt-checkpoint", TRAIN + " run.resume=true run.out_dir={runs} run.name=resume_corrupt"),
    Cli("train-resume-hostile-checkpoint", TRAIN + " run.resume=true run.out_dir={runs} run.name=resume_hostile"),
    Cli("train-resume-empty-checkpoint", TRAIN + " run.resume=true run.out_dir={runs} run.name=resume_empty"),
    Cli("train-resume-wrong-checkpoint", TRAIN + " run.resume=true run.out_dir={runs} run.name=resume_wrong"),
    # export
    Cli("export-unknown-recipe", "export qasm --recipe nope"),
    Cli("export-bad-version", "export qasm --recipe rezk_qnn --version 4"),
    Cli("export-weights-missing", "export qasm --recipe rezk_qnn --weights {missing}"),
    Cli("export-weights-empty", "export qasm --recipe rezk_qnn --weights {empty}"),
    Cli("export-weights-truncated", "export qasm --recipe rezk_qnn --weights {pt_trunc}"),
    Cli("export-weights-corrupt", "export qasm --recipe rezk_qnn --weights {pt_corrupt}"),
    Cli("export-weights-hostile", "export qasm --recipe rezk_qnn --weights {pt_hostile}"),
    Cli("export-weights-wrong-content", "export qasm --recipe rezk_qnn --weights {pt_wrong}"),
    Cli("export-weights-text", "export qasm --recipe rezk_qnn --weights {text}"),
    Cli("export-weights-folder", "export qasm --recipe rezk_qnn --weights {dir}"),
    Cli("export-input-nan", "export qasm --recipe rezk_qnn --input=nan,0,0,0"),
    Cli("export-input-inf", "export qasm --recipe rezk_qnn --input=0,inf,0,0"),
    Cli("export-input-count", "export qasm --recipe rezk_qnn --input=0.1,0.2"),
    Cli("export-input-text", "export qasm --recipe rezk_qnn --input=a,b,c,d"),
    Cli("export-output-under-file", "export qasm --recipe rezk_qnn -o {afile}/x.qasm"),
    Cli("export-output-is-folder", "export qasm --recipe rezk_qnn -o {dir}"),
    Cli("export-coupling-text", "export resources --recipe rezk_qnn --coupling 0-x"),
    Cli("export-model-missing", "export qasm --model {missing}"),
    Cli("export-model-hostile", "export qasm --model {pt_hostile}"),
    Cli("export-model-wrong-content", "export qasm --model {pt_wrong}"),
    Cli("export-model-unknown-layer", "export qasm --model {model} --layer nope", needs="trained"),
    Cli("export-model-input-nan", "export qasm --model {model} --input=nan,0,0,0", needs="trained"),
    Cli("export-model-input-count", "export qasm --model {model} --input=0.1", needs="trained"),
    Cli("export-model-and-weights", "export qasm --model {model} --weights {pt_wrong}", needs="trained"),
    Cli("export-model-output-under-file", "export qasm --model {model} -o {afile}/m.qasm", needs="trained"),
    Cli("export-model-and-recipe", "export qasm --model {model} --recipe rezk_qnn", needs="trained"),
    # bench
    Cli("bench-no-suite", "bench"),
    Cli("bench-threads-zero", "bench circuits --json {out}/b.json --threads 0"),
    Cli("bench-threads-negative", "bench circuits --json {out}/b.json --threads -2"),
    Cli("bench-repeats-zero", "bench circuits --json {out}/b.json --repeats 0"),
    Cli("bench-budget-negative", "bench circuits --json {out}/b.json --budget -1"),
    Cli("bench-budget-inf", "bench circuits --json {out}/b.json --budget inf"),
    Cli("bench-max-call-zero", "bench circuits --json {out}/b.json --max-call 0"),
    Cli("bench-max-call-nan", "bench circuits --json {out}/b.json --max-call nan"),
    Cli("bench-cuda-missing", "bench circuits --json {out}/b.json --device cuda", needs="cuda-less"),
    Cli("bench-unknown-device", "bench circuits --json {out}/b.json --device tpu"),
    Cli("bench-batches-zero", "bench circuits --json {out}/b.json --batches 0"),
    Cli("bench-batches-negative", "bench noise --json {out}/b.json --batches 1,-4"),
    Cli("bench-batches-text", "bench circuits --json {out}/b.json --batches one"),
    Cli("bench-unknown-backend", "bench circuits --json {out}/b.json --backends nope"),
    Cli("bench-unknown-mode", "bench circuits --json {out}/b.json --modes sideways"),
    Cli("bench-json-under-file", "bench circuits --json {afile}/b.json"),
    Cli("bench-json-is-folder", "bench circuits --json {dir}"),
    Cli("bench-json-unreadable", "bench circuits --json {json_bad} --quick --backends hqnn --circuits rezk_qnn"),
    Cli("bench-memory-qubits-zero", "bench memory --json {out}/b.json --qubits 0"),
    Cli("bench-scaling-layers-zero", "bench scaling --json {out}/b.json --layers 0"),
    Cli("bench-scaling-png-under-file", "bench scaling --json {out}/b.json --png {afile}/s.png"),
    Cli("bench-train-threads-zero", "bench train --json {out}/b.json --threads 0"),
    # compare / demo (helper A's commands)
    Cli("compare-seeds-zero", COMPARE.format(options="--seeds 0")),
    Cli("compare-seeds-negative", COMPARE.format(options="--seeds -1")),
    Cli("compare-unknown-arm", COMPARE.format(options="--seeds 1 --arms hybrid,quantum_magic")),
    Cli("compare-unknown-preset", "compare nosuch"),
    Cli("compare-lr-nan", COMPARE.format(options="--seeds 1") + " optim.lr=nan"),
    Cli("compare-unknown-key", COMPARE.format(options="--seeds 1") + " foo=1"),
    Cli("compare-out-under-file", COMPARE.format(options="--seeds 1 --out {afile}/study")),
    Cli("compare-out-dir-under-file", COMPARE.format(options="--seeds 1") + " run.out_dir={afile}/runs"),
    Cli("demo-epochs-zero", "demo --epochs 0 --out-dir {out}"),
    Cli("demo-seeds-zero", "demo --seeds 0 --out-dir {out}"),
    Cli("demo-out-under-file", "demo --out-dir {afile}/x --epochs 1 --seeds 1"),
    # evaluate / predict (helper C's commands)
    Cli("evaluate-missing", "evaluate {missing}"),
    Cli("evaluate-empty", "evaluate {empty}"),
    Cli("evaluate-truncated", "evaluate {pt_trunc}"),
    Cli("evaluate-hostile", "evaluate {pt_hostile}"),
    Cli("evaluate-wrong-content", "evaluate {pt_wrong}"),
    Cli("evaluate-empty-folder", "evaluate {dir}"),
    Cli("evaluate-unknown-split", "evaluate {model} --split nope", needs="trained"),
    Cli("evaluate-unknown-dataset", "evaluate {model} --data nope", needs="trained"),
    Cli("evaluate-shots-zero", "evaluate {model} --shots 0", needs="trained"),
    Cli("evaluate-shots-text", "evaluate {model} --shots many", needs="trained"),
    Cli("evaluate-unknown-noise", "evaluate {model} --noise gremlins=0.1", needs="trained"),
    Cli("evaluate-noise-out-of-range", "evaluate {model} --noise depolarizing=1.5", needs="trained"),
    Cli("evaluate-noise-nan", "evaluate {model} --noise depolarizing=nan", needs="trained"),
    Cli("evaluate-cuda-missing", "evaluate {model} --device cuda", needs="trained"),
    Cli("evaluate-json-under-file", "evaluate {model} --json {afile}/e.json", needs="trained"),
    Cli("evaluate-wrong-dataset-shape", "evaluate {model} --data mnist --path {mnist_trunc}", needs="trained"),
    Cli("predict-model-missing", "predict {missing} {npy_nan}"),
    Cli("predict-model-hostile", "predict {pt_hostile} {npy_nan}"),
    Cli("predict-model-wrong-content", "predict {pt_wrong} {npy_nan}"),
    Cli("predict-image-missing", "predict {model} {missing}", needs="trained"),
    Cli("predict-image-corrupt", "predict {model} {png_corrupt}", needs="trained"),
    Cli("predict-image-text", "predict {model} {text}", needs="trained"),
    Cli("predict-npy-wrong-shape", "predict {model} {npy_wrong}", needs="trained"),
    Cli("predict-npy-nan", "predict {model} {npy_nan}", needs="trained"),
    Cli("predict-empty-folder", "predict {model} {dir}", needs="trained"),
    Cli("predict-top-k-zero", "predict {model} {npy_nan} --top-k 0", needs="trained"),
    Cli("predict-json-under-file", "predict {model} {mnist_trunc} --json {afile}/p.json", needs="trained"),
    Cli("predict-cuda-missing", "predict {model} {npy_nan} --device cuda", needs="trained"),
    Cli("predict-csv-under-file", "predict {model} {mnist_trunc} --csv {afile}/p.csv", needs="trained"),
    Cli("predict-top-k-negative", "predict {model} {npy_nan} --top-k -2", needs="trained"),
    Cli("evaluate-json-is-folder", "evaluate {model} --json {dir}", needs="trained"),
    Cli("evaluate-run-folder-hostile", "evaluate {runs}/resume_hostile"),
]
_KNOWN_COMMANDS: set[str] | None = None


def _commands() -> set[str]:
    global _KNOWN_COMMANDS
    if _KNOWN_COMMANDS is None:
        from hqnn.cli import _COMMANDS

        _KNOWN_COMMANDS = set(_COMMANDS)
    return _KNOWN_COMMANDS


@pytest.mark.parametrize("case", [c.param() for c in CLI_CASES])
def test_cli(case: Cli, inputs, tmp_path, capsys, request, monkeypatch):
    command = case.argv.split()[0]
    if command not in _commands() and command != "nosuch":
        pytest.skip(f"`hqnn {command}` does not exist in this checkout")
    if command == "bench" and "train" in case.argv.split()[1:2] and "train" not in _bench_suites():
        pytest.skip("`hqnn bench train` does not exist in this checkout")
    values = {k: str(v) for k, v in inputs.items()}
    values["out"] = str(tmp_path)
    roots = [inputs["root"], tmp_path]
    if "{model}" in case.argv or "{run}" in case.argv:
        run_dir = request.getfixturevalue("trained")
        values |= {"model": str(run_dir / "cnn_qnn" / "model.pt"), "run": str(run_dir)}
        assert Path(values["model"]).is_file()  # the case must fail on its bad input, not on a missing model
        roots.append(run_dir)
    argv = shlex.split(case.argv.format(**values))
    monkeypatch.chdir(tmp_path)
    before = _snapshot(*roots)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage line + one error line, exit status 2
        code = exc.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error:" in line]
    assert code == 2, f"exit status {code}; stderr: {err[-500:]}"
    assert "Traceback" not in err
    assert len(errors) == 1 and err.rstrip().endswith(errors[0].rstrip()), err
    assert errors[0].startswith("hqnn"), errors[0]
    assert not inputs["pwned"].exists(), "a hostile file ran code"
    assert _snapshot(*roots) == before, "a failed command wrote or changed files"
    _RAN.append(case.id)


def _bench_suites() -> set[str]:
    import argparse

    from hqnn.bench import cli as bench_cli

    parser = argparse.ArgumentParser()
    bench_cli.add_arguments(parser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_cli_errors_are_one_line_from_a_real_process(inputs, tmp_path):
    """End to end through the installed entry point: one line on stderr, exit status 2, no traceback."""
    import subprocess

    for argv in (["models", "--num-classes", "-3"], ["data", "info", "cifar10", "--path", str(inputs["cifar_memmap"])],
                 ["train", "digits_cnn_qnn", "optim.lr=nan"]):
        done = subprocess.run([sys.executable, "-m", "hqnn.cli", *argv], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "error:" in done.stderr, done.stderr
        _RAN.append("process:" + argv[0])
    assert not list(tmp_path.iterdir()) and not inputs["pwned"].exists()


# ---------------------------------------------------------------------------------------------------
# the library's entry points

@dataclass(frozen=True)
class Lib:
    id: str
    call: Callable[[dict[str, Path]], Any]
    error: type = HQNNError
    match: str = ""
    xfail: str | None = None

    def param(self):
        marks = [pytest.mark.xfail(reason=self.xfail, strict=True)] if self.xfail else []
        return pytest.param(self, id=self.id, marks=marks)


def _circuit(n_qubits: int = 2, n_inputs: int = 2):
    from hqnn.sim import Circuit

    c = Circuit(n_qubits, n_inputs=n_inputs)
    w = c.add_weights("w", (n_qubits,))
    for i in range(n_qubits):
        c.ry(c.inputs[i % max(n_inputs, 1)] if n_inputs else 0.1, i)
        c.rz(w[i], i)
    c.expval_z()
    return c


def _run(circuit=None, inputs=None, weights=None, **kwargs):
    from hqnn.sim import run

    circuit = circuit or _circuit()
    return run(circuit, inputs, weights, **kwargs)


def _layer(x):
    from hqnn.qnn import QuantumLayer

    return QuantumLayer(_circuit())(x)


def _load(name, path, **kwargs):
    from hqnn.data import load_dataset

    return load_dataset(name, path, **kwargs)


def _config(values):
    from hqnn.train.config import config_from_dict

    return config_from_dict(values)


def _override(*items):
    from hqnn.train.config import ExperimentConfig, apply_overrides

    return apply_overrides(ExperimentConfig(), list(items))


def _checkpoint(path):
    from hqnn.train.checkpoint import load_checkpoint

    return load_checkpoint(path)


def _model(name, **kwargs):
    from hqnn.models import create_model

    return create_model(name, **kwargs)


def _image_dataset(images, labels, classes=("a", "b")):
    from hqnn.data.dataset import ImageDataset

    return ImageDataset(images, labels, classes)


NAN, INF = float("nan"), float("inf")

LIB_CASES = [
    # circuit builder
    Lib("circuit-zero-qubits", lambda p: _circuit_builder(0), WireError, "got 0"),
    Lib("circuit-negative-qubits", lambda p: _circuit_builder(-2), WireError, "got -2"),
    Lib("circuit-negative-inputs", lambda p: _circuit_builder(2, n_inputs=-1), ShapeError, "got -1"),
    Lib("circuit-wire-out-of-range", lambda p: _circuit_builder(2).rx(0.1, 5), WireError, "wire 5"),
    Lib("circuit-negative-wire", lambda p: _circuit_builder(2).cnot(0, -1), WireError),
    Lib("circuit-repeated-wire", lambda p: _circuit_builder(2).cnot(1, 1), WireError),
    Lib("circuit-unknown-gate", lambda p: _circuit_builder(2).gate("Frobnicate", 0), GateError),
    Lib("circuit-wrong-param-count", lambda p: _circuit_builder(2).gate("RX", 0, 0.1, 0.2), GateError),
    Lib("circuit-nan-angle", lambda p: _circuit_builder(2).rx(NAN, 0), GateError, "finite"),
    Lib("circuit-inf-angle", lambda p: _circuit_builder(2).ry(INF, 0), GateError, "finite"),
    Lib("circuit-input-index", lambda p: _circuit_builder(2, n_inputs=2).inputs[5], HQNNError),
    Lib("circuit-weights-negative-shape", lambda p: _circuit_builder(2).add_weights("w", (-3, 2)), HQNNError),
    Lib("circuit-duplicate-weight-block", lambda p: _duplicate_block(), HQNNError),
    Lib("circuit-unknown-pauli", lambda p: _circuit_builder(2).expval("Q0"), HQNNError),
    Lib("circuit-pauli-wire", lambda p: _circuit_builder(2).expval("Z0 X9"), WireError),
    Lib("circuit-probs-repeated", lambda p: _circuit_builder(2).probs([0, 0]), WireError),
    Lib("circuit-unitary-not-unitary", lambda p: _circuit_builder(1).unitary(np.ones((2, 2)), [0]), HQNNError),
    Lib("circuit-unitary-wrong-size", lambda p: _circuit_builder(2).unitary(np.eye(3), [0]), HQNNError),
    Lib("circuit-unknown-channel", lambda p: _circuit_builder(1).channel("gremlin", 0, 0.1), HQNNError),
    Lib("circuit-channel-probability", lambda p: _circuit_builder(1).channel("depolarizing", 0, 1.5), HQNNError),
    Lib("circuit-channel-nan", lambda p: _circuit_builder(1).channel("bit_flip", 0, NAN), HQNNError),
    Lib("circuit-readout-error-range", lambda p: _circuit_builder(1).readout_error(-0.1, 0.0, 0), HQNNError),
    # simulation
    Lib("run-input-width", lambda p: _run(inputs=torch.zeros(3, 5), weights=torch.zeros(2)), ShapeError, "got"),
    Lib("run-input-rank", lambda p: _run(inputs=torch.zeros(2), weights=torch.zeros(2)), ShapeError),
    Lib("run-no-inputs", lambda p: _run(weights=torch.zeros(2)), ShapeError),
    Lib("run-weight-shape", lambda p: _run(inputs=torch.zeros(1, 2), weights=torch.zeros(3)), ShapeError),
    Lib("run-nan-inputs", lambda p: _run(inputs=torch.full((2, 2), NAN), weights=torch.zeros(2)), ValueRangeError),
    Lib("run-inf-weights", lambda p: _run(inputs=torch.zeros(2, 2), weights=torch.tensor([0.0, INF])),
        ValueRangeError),
    Lib("run-complex-inputs", lambda p: _run(inputs=torch.zeros(1, 2, dtype=torch.complex64),
                                             weights=torch.zeros(2)), ShapeError),
    Lib("run-unknown-method", lambda p: _run(inputs=torch.zeros(1, 2), weights=torch.zeros(2), method="quantum"),
        HQNNError),
    Lib("run-too-many-qubits", lambda p: _run(_circuit(40, 0), None, torch.zeros(40)), ResourceError, "GiB"),
    Lib("run-too-many-qubits-batch", lambda p: _run(_circuit(30, 2), torch.zeros(64, 2), torch.zeros(30)),
        ResourceError),
    # quantum layer
    Lib("layer-input-width", lambda p: _layer(torch.zeros(4, 3)), ShapeError, "got"),
    Lib("layer-nan-input", lambda p: _layer(torch.full((4, 2), NAN)), ValueRangeError),
    Lib("layer-inf-input", lambda p: _layer(torch.full((1, 2), -INF)), ValueRangeError),
    Lib("layer-unknown-diff-method", lambda p: _quantum_layer(diff_method="magic"), ConfigError),
    Lib("layer-unknown-init", lambda p: _quantum_layer(init="magic"), HQNNError),
    Lib("layer-not-a-circuit", lambda p: _quantum_layer(circuit="rezk"), ConfigError, "got str"),
    Lib("layer-negative-shots", lambda p: _quantum_layer(shots=-5)(torch.zeros(1, 2)), HQNNError),
    # classical layers
    Lib("layers-spike-encode-range", lambda p: _spiking().weighted_phase_encode(torch.full((2, 3), 2.0), 4),
        ValueRangeError, "got"),
    Lib("layers-spike-encode-negative", lambda p: _spiking().weighted_phase_encode(-torch.ones(2), 4),
        ValueRangeError),
    Lib("layers-spike-encode-nan", lambda p: _spiking().weighted_phase_encode(torch.full((2,), NAN), 4),
        ValueRangeError, "nan"),
    Lib("layers-spike-encode-steps", lambda p: _spiking().weighted_phase_encode(torch.zeros(2), 0), ConfigError),
    Lib("layers-spike-encoder-bits", lambda p: _spiking().WeightedPhaseEncoder(4, bits=0), ConfigError),
    Lib("layers-attention-kind", lambda p: _layers("attention").make_attention("self", 4), ConfigError, "'self'"),
    Lib("layers-ghost-channels", lambda p: _layers("ghost").SelfProliferate(0, 4), ConfigError, "got 0"),
    Lib("layers-ghost-kernel", lambda p: _layers("ghost").SelfProliferate(4, 8, conv_kernel=2), ConfigError),
    Lib("layers-spa-attention", lambda p: _layers("spa_block").SPABlock(4, 8, 4, attention="x"), ConfigError),
    # templates and recipes
    Lib("template-sel-weight-shape", lambda p: _apply("StronglyEntanglingLayers", (2, 4, 3)), ShapeError, "got"),
    Lib("template-sel-weight-rank", lambda p: _apply("StronglyEntanglingLayers", (2, 3)), ShapeError),
    Lib("template-sel-ranges", lambda p: _apply("StronglyEntanglingLayers", (1, 3, 3), ranges=[3]), ConfigError),
    Lib("template-sel-imprimitive", lambda p: _apply("StronglyEntanglingLayers", (1, 3, 3), imprimitive="RX"),
        ConfigError),
    Lib("template-basic-weight-shape", lambda p: _apply("BasicEntanglerLayers", (2, 5)), ShapeError),
    Lib("template-entangler-pattern", lambda p: _apply("Entangler", None, pattern="spiral"), HQNNError),
    Lib("template-entangler-gate", lambda p: _apply("Entangler", None, gate="Frobnicate"), GateError),
    Lib("template-entangler-weights", lambda p: _apply("Entangler", None, gate="CRX"), ConfigError, "weights"),
    Lib("template-reupload-weight-shape", lambda p: _apply("DataReuploading", (1, 2, 3), features=True), ShapeError),
    Lib("template-angle-rotation", lambda p: _apply("AngleEmbedding", None, features=True, rotation="Q"),
        ConfigError, "got 'Q'"),
    Lib("template-angle-too-many", lambda p: _apply("AngleEmbedding", None, features=True, n_inputs=5), ShapeError),
    Lib("recipe-zero-qubits", lambda p: _recipe("rezk_qnn", 0), HQNNError),
    Lib("recipe-zero-layers", lambda p: _recipe("rezk_qnn", 4, n_layers=0), HQNNError),
    Lib("recipe-unknown-readout", lambda p: _recipe("rezk_qnn", 4, readout="magic"), HQNNError),
    Lib("recipe-sel-rotation", lambda p: _recipe("strongly_entangling", 4, rotation="Q"), HQNNError),
    # models
    Lib("model-unknown", lambda p: _model("resnet9000"), ConfigError, "unknown model"),
    Lib("model-unknown-argument", lambda p: _model("cnn_qnn", foo=1), ConfigError),
    Lib("model-image-too-small", lambda p: _model("cnn_qnn", img_size=3), ConfigError),
    Lib("model-negative-classes", lambda p: _model("cnn_qnn", num_classes=-3), ConfigError, "num_classes"),
    Lib("model-zero-classes", lambda p: _model("cnn_qnn", num_classes=0), ConfigError, "num_classes"),
    Lib("model-zero-channels", lambda p: _model("cnn_qnn", in_chans=0), ConfigError, "in_chans"),
    # datasets
    Lib("data-unknown-dataset", lambda p: _load("imagenet", None), DataError),
    Lib("data-no-path", lambda p: _load("mnist", None), DataError, "path"),
    Lib("data-missing-path", lambda p: _load("mnist", p["missing"]), DataError, "does not exist"),
    Lib("data-unknown-split", lambda p: _load("digits", None, split="validation"), DataError),
    Lib("data-idx-truncated", lambda p: _load("mnist", p["mnist_trunc"]), DataError),
    Lib("data-idx-magic", lambda p: _load("mnist", p["mnist_magic"]), DataError),
    Lib("data-idx-gzip", lambda p: _load("fashion_mnist", p["mnist_gz"]), DataError),
    Lib("data-idx-count", lambda p: _load("mnist", p["mnist_count"], split="test"), DataError),
    Lib("data-read-idx-garbage", lambda p: _read_idx(p["garbage"]), DataError),
    Lib("data-read-idx-empty", lambda p: _read_idx(p["empty"]), DataError),
    Lib("data-cifar-split", lambda p: _load("cifar10", p["cifar_trunc"], split="val"), DataError),
    Lib("data-cifar-truncated", lambda p: _load("cifar10", p["cifar_trunc"]), DataError),
    Lib("data-cifar-memmap", lambda p: _load("cifar10", p["cifar_memmap"]), DataError, "refusing"),
    Lib("data-cifar-shape", lambda p: _load("cifar10", p["cifar_shape"]), DataError, "3072"),
    Lib("data-cifar-labels", lambda p: _load("cifar10", p["cifar_labels"]), DataError),
    Lib("data-cifar100-hostile", lambda p: _load("cifar100", p["cifar100_hostile"]), DataError, "refusing"),
    Lib("data-cifar100-label-mode", lambda p: _load("cifar100", p["cifar100_hostile"], label_mode="medium"),
        DataError),
    Lib("data-wm811k-hostile", lambda p: _load("wm811k", p["pkl_hostile"]), DataError, "refusing"),
    Lib("data-wm811k-empty", lambda p: _load("wm811k", p["pkl_empty"]), DataError),
    Lib("data-wm811k-truncated", lambda p: _load("wm811k", p["xz_trunc"]), DataError),
    Lib("data-wm811k-not-frame", lambda p: _load("wm811k", p["pkl_list"]), DataError),
    Lib("data-wm811k-bad-npz", lambda p: _load("wm811k", p["npz_bad"]), DataError),
    Lib("data-wm811k-wrong-npz", lambda p: _load("wm811k", p["npz_wrong"]), DataError),
    Lib("data-wm811k-convert-hostile", lambda p: _convert(p["pkl_hostile"], p["root"] / "never.npz"), DataError),
    Lib("data-folder-empty", lambda p: _load("folder", p["dir"]), DataError),
    Lib("data-folder-corrupt", lambda p: _load("folder", p["images_corrupt"]), DataError),
    Lib("data-images-shape", lambda p: _image_dataset(torch.zeros(2, 8), torch.zeros(2, dtype=torch.long)),
        HQNNError),
    Lib("data-labels-count", lambda p: _image_dataset(torch.zeros(3, 1, 8, 8), torch.zeros(2, dtype=torch.long)),
        HQNNError),
    Lib("data-labels-range", lambda p: _image_dataset(torch.zeros(2, 1, 8, 8), torch.tensor([0, 7])), HQNNError),
    Lib("data-pickle-garbage", lambda p: _unpickle(p["garbage"]), DataError),
    Lib("data-pickle-empty", lambda p: _unpickle(p["empty"]), DataError),
    # config
    Lib("config-not-mapping", lambda p: _config([1, 2]), ConfigError),
    Lib("config-unknown-section", lambda p: _config({"training": {}}), ConfigError, "unknown config key"),
    Lib("config-unknown-key", lambda p: _config({"train": {"epoch": 3}}), ConfigError, "did you mean"),
    Lib("config-wrong-type", lambda p: _config({"train": {"epochs": "three"}}), ConfigError, "got"),
    Lib("config-bool-as-int", lambda p: _config({"train": {"epochs": True}}), ConfigError),
    Lib("config-section-not-mapping", lambda p: _config({"optim": 3}), ConfigError),
    Lib("config-lr-nan", lambda p: _config({"optim": {"lr": NAN}}), ConfigError, "finite"),
    Lib("config-lr-inf", lambda p: _config({"optim": {"lr": INF}}), ConfigError, "finite"),
    Lib("config-max-lr-negative", lambda p: _config({"schedule": {"max_lr": -1e-3}}), ConfigError, "max_lr"),
    Lib("config-weight-decay-nan", lambda p: _config({"optim": {"weight_decay": NAN}}), ConfigError),
    Lib("config-top-level-unknown", lambda p: _config({"presets": "x"}), ConfigError),
    Lib("override-no-equals", lambda p: _override("epochs"), ConfigError, "key=value"),
    Lib("override-unknown", lambda p: _override("foo=1"), ConfigError),
    Lib("override-ambiguous", lambda p: _override("name=x"), ConfigError, "ambiguous"),
    Lib("override-preset", lambda p: _override("preset=foo"), ConfigError),
    Lib("override-preset-subkey", lambda p: _override("preset.x=1"), ConfigError),
    Lib("override-bad-yaml", lambda p: _override("model.args={a: [1"), ConfigError),
    Lib("yaml-missing", lambda p: _yaml(p["missing"]), ConfigError),
    Lib("yaml-invalid", lambda p: _yaml(p["yaml_bad"]), ConfigError),
    Lib("yaml-list", lambda p: _yaml(p["yaml_list"]), ConfigError),
    Lib("yaml-binary", lambda p: _yaml(p["garbage"]), ConfigError),
    Lib("yaml-folder", lambda p: _yaml(p["dir"]), ConfigError),
    Lib("preset-unknown", lambda p: _preset("nosuch"), ConfigError),
    # checkpoints
    Lib("checkpoint-missing", lambda p: _checkpoint(p["missing"]), ConfigError),
    Lib("checkpoint-empty", lambda p: _checkpoint(p["empty"]), ConfigError),
    Lib("checkpoint-truncated", lambda p: _checkpoint(p["pt_trunc"]), ConfigError),
    Lib("checkpoint-corrupt", lambda p: _checkpoint(p["pt_corrupt"]), ConfigError),
    Lib("checkpoint-hostile", lambda p: _checkpoint(p["pt_hostile"]), ConfigError),
    Lib("checkpoint-text", lambda p: _checkpoint(p["text"]), ConfigError),
    # the trainer's inputs
    Lib("device-cuda-missing", lambda p: _device("cuda"), ConfigError,
        xfail="this machine has CUDA" if HAS_CUDA else None),
    Lib("output-folder-under-file", lambda p: _output_folder(p["afile"] / "runs"), ConfigError),
]


def _layers(module):
    import importlib

    return importlib.import_module(f"hqnn.layers.{module}")


def _spiking():
    return _layers("spiking")


def _circuit_builder(n_qubits, n_inputs=0):
    from hqnn.sim import Circuit

    return Circuit(n_qubits, n_inputs=n_inputs)


def _duplicate_block():
    c = _circuit_builder(2)
    c.add_weights("w", (2,))
    return c.add_weights("w", (2,))


def _quantum_layer(circuit=None, **kwargs):
    from hqnn.qnn import QuantumLayer

    return QuantumLayer(_circuit() if circuit is None else circuit, **kwargs)


def _apply(name, weight_shape, features=False, n_inputs=9, **kwargs):
    """Add template ``name`` to a 3-qubit circuit, with weights of ``weight_shape`` (and the inputs)."""
    import hqnn.templates as templates
    from hqnn.sim import Circuit

    c = Circuit(3, n_inputs=n_inputs)
    if weight_shape is not None:
        kwargs["weights"] = c.add_weights("w", weight_shape)
    if features:
        kwargs["features"] = c.inputs
    return c.add(getattr(templates, name)(**kwargs))


def _recipe(name, n_qubits, **kwargs):
    from hqnn.templates import recipes

    return getattr(recipes, name)(n_qubits, **kwargs)


def _read_idx(path):
    from hqnn.data.idx import read_idx

    return read_idx(path, 3)


def _convert(src, dst):
    from hqnn.data import convert_wm811k

    return convert_wm811k(src, dst)


def _unpickle(path):
    from hqnn.data._pickle import load_pickle

    return load_pickle(path.read_bytes(), path)


def _yaml(path):
    from hqnn.train.config import load_yaml

    return load_yaml(path)


def _preset(name):
    from hqnn.train.presets import load_config

    return load_config(name)


def _device(name):
    from hqnn.train.trainer import resolve_device

    return resolve_device(name)


def _output_folder(path):
    from hqnn.train.experiment import check_output_folder

    return check_output_folder(path)


@pytest.mark.parametrize("case", [c.param() for c in LIB_CASES])
def test_library(case: Lib, inputs):
    before = _snapshot(inputs["root"])
    with pytest.raises(HQNNError) as caught:
        case.call(inputs)
    message = str(caught.value)
    assert isinstance(caught.value, case.error), f"{type(caught.value).__name__}: {message}"
    assert "\n" not in message.strip() and len(message) > 20, message  # one line that says something
    if case.match:
        assert case.match in message, message
    assert not inputs["pwned"].exists() and _snapshot(inputs["root"]) == before
    _RAN.append(case.id)


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
@pytest.mark.parametrize("epoch_finished", [False, True])
def test_run_directory_removed_when_nothing_finished(tmp_path, monkeypatch, failure, epoch_finished):
    """A run that fails (or is interrupted) before any epoch finished leaves no run directory; once a
    checkpoint exists the directory stays, so that ``run.resume=true`` can continue it."""
    from hqnn.train import experiment
    from hqnn.train.checkpoint import CHECKPOINT_NAME
    from hqnn.train.presets import load_config

    def crash(self):
        self.model_dir.mkdir(parents=True, exist_ok=True)
        if epoch_finished:
            (self.model_dir / CHECKPOINT_NAME).write_bytes(b"a checkpoint")
        raise failure("crashed")

    monkeypatch.setattr(experiment.Trainer, "fit", crash)
    config = load_config("digits_cnn_qnn", [*TRAIN_OVERRIDES, f"run.out_dir={tmp_path}", "run.name=crash"])
    with pytest.raises(failure):
        experiment.run_experiment(config)
    _RAN.append(f"run-dir-{failure.__name__}-{epoch_finished}")
    assert (tmp_path / "crash").exists() == epoch_finished
    if epoch_finished:
        assert (tmp_path / "crash" / "config.yaml").is_file()


def test_catalogue_size():
    """The catalogue holds at least MIN_CASES cases across the commands and entry points."""
    assert len(CLI_CASES) + len(LIB_CASES) >= MIN_CASES
    commands = {case.argv.split()[0] for case in CLI_CASES}
    from hqnn.cli import _COMMANDS

    assert set(_COMMANDS) <= commands, f"commands without a bad-input case: {set(_COMMANDS) - commands}"
