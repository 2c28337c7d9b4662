"""Test-time views (``data.test_views``): the symmetry group is right, the averaged log-probabilities
are computed from the real model on each view, and ``hqnn evaluate`` reproduces a run's recorded test
metrics with views on."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from hqnn.cli import main
from hqnn.exceptions import ConfigError
from hqnn.train import load_config, run_experiment
from hqnn.train.trainer import run_inference, symmetric_views

TINY = ["train.epochs=1", "run.progress=false", "data.limit=60", "data.image_size=12", "train.threads=1"]


def test_rot90flip_gives_the_eight_distinct_symmetries_of_a_square():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)  # no symmetry of its own
    views = symmetric_views(image, "rot90flip")
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    # closed under the generators: rotating or mirroring any view gives another view
    keys = {tuple(v.flatten().tolist()) for v in views}
    for view in views:
        assert tuple(torch.rot90(view, 1, (-2, -1)).flatten().tolist()) in keys
        assert tuple(view.flip(-2).flatten().tolist()) in keys
    assert [v.flatten().tolist() for v in symmetric_views(image, "flip")] == [
        image.flatten().tolist(), image.flip(-1).flatten().tolist()]
    assert symmetric_views(image, "none")[0] is image


def test_the_views_average_log_probabilities_of_the_model_on_each_view():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    images = torch.rand(5, 1, 4, 4)
    loader = [(images, torch.arange(5) % 3, torch.arange(5))]
    _, logits = run_inference(model, loader, lambda x, i: x, torch.device("cpu"), "rot90flip")
    expected = sum(torch.log_softmax(model(torch.rot90(m, k, (-2, -1))), 1)
                   for m in (images, images.flip(-1)) for k in range(4)) / 8
    torch.testing.assert_close(logits, expected.detach())
    _, plain = run_inference(model, loader, lambda x, i: x, torch.device("cpu"))
    assert not torch.allclose(plain, logits)  # the model is not invariant, so the views matter


def test_unknown_views_are_refused():
    with pytest.raises(ConfigError, match="test_views"):
        load_config("digits_cnn_qnn", ["data.test_views=rot45"])


def test_evaluate_reproduces_a_run_tested_with_views(tmp_path, capsys):
    run = run_experiment(load_config("digits_cnn_qnn", [*TINY, "train.compare=false", "data.test_views=rot90flip", f"run.out_dir={tmp_path}"]))
    model_dir = run.run_dir / "cnn_qnn_plus"
    summary = json.loads((model_dir / "summary.json").read_text())
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(model_dir), "--json", str(out)]) == 0
    (entry,) = json.loads(out.read_text())["models"]
    assert {k: entry[k] for k in ("loss", "accuracy", "f1")} == {k: summary["test"][k] for k in ("loss", "accuracy", "f1")}
