"""The trainer: run directory contents, determinism, resume, interrupts, two-phase freezing."""

import json

import pytest
import torch

from hqnn.exceptions import ConfigError
from hqnn.train.checkpoint import CHECKPOINT_NAME, atomic_write, load_checkpoint
from hqnn.train.config import config_from_dict, load_yaml
from hqnn.train.experiment import run_experiment
from hqnn.train.loaders import build_data
from hqnn.train.trainer import Trainer


def test_run_writes_config_reports_and_checkpoint(tiny_config):
    config = tiny_config("epochs=1")
    result = run_experiment(config)
    run_dir = result.run_dir
    assert config_from_dict(load_yaml(run_dir / "config.yaml")) == config
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["seed"] == 0 and {"python", "torch", "numpy", "hqnn"} <= set(env["versions"])
    model_dir = run_dir / "cnn_qnn"
    for name in ("checkpoint.pt", "metrics.csv", "metrics.json", "model.pt", "summary.json"):
        assert (model_dir / name).is_file(), name
    rows = json.loads((model_dir / "metrics.json").read_text())
    assert len(rows) == 1 and {"train_loss", "val_f1", "val_precision", "val_recall", "lr"} <= set(rows[0])
    assert (model_dir / "metrics.csv").read_text().splitlines()[0].startswith("epoch,phase,lr,train_loss")
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["n_quantum_params"] == 8
    assert load_checkpoint(model_dir / CHECKPOINT_NAME)["epoch"] == 1
    assert list((run_dir.parent / "splits").glob("digits_*.npz"))


def test_fresh_run_never_overwrites(tiny_config):
    first = run_experiment(tiny_config("epochs=1")).run_dir
    second = run_experiment(tiny_config("epochs=1")).run_dir
    assert first != second and second.name == "tiny-2"


def test_compare_trains_twin_on_same_split_and_is_deterministic(tiny_config):
    first = run_experiment(tiny_config("epochs=1", "compare=true"))
    assert [r.model_name for r in first.results] == ["cnn_qnn", "cnn_qnn_classical"]
    assert first.results[1].n_quantum_params == 0
    again = run_experiment(tiny_config("epochs=1", "compare=true"))
    assert [r.test for r in again.results] == [r.test for r in first.results]


def _interrupt_in_epoch(monkeypatch, epoch):
    """Make the training pass of ``epoch`` (1-based) raise KeyboardInterrupt."""
    original = Trainer._pass

    def interrupted(self, split, training):
        if training and self.epoch + 1 == epoch:
            raise KeyboardInterrupt
        return original(self, split, training)

    monkeypatch.setattr(Trainer, "_pass", interrupted)


def test_interrupt_keeps_last_good_checkpoint_and_resume_matches(tiny_config, monkeypatch, tmp_path):
    straight = run_experiment(tiny_config("run.name=straight")).results[0]
    with monkeypatch.context() as patch:
        _interrupt_in_epoch(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(tiny_config())
    model_dir = tmp_path / "runs" / "tiny" / "cnn_qnn"
    assert load_checkpoint(model_dir / CHECKPOINT_NAME)["epoch"] == 1
    assert json.loads((model_dir / "summary.json").read_text())["status"] == "interrupted"
    resumed = run_experiment(tiny_config("run.resume=true")).results[0]
    assert resumed.best_epoch == straight.best_epoch
    assert resumed.test == straight.test
    rows = [json.loads((d / "metrics.json").read_text()) for d in (model_dir, straight.model_dir)]
    assert [r["val_loss"] for r in rows[0]] == [r["val_loss"] for r in rows[1]]


def test_resume_refuses_a_different_config(tiny_config):
    run_experiment(tiny_config("epochs=1"))
    with pytest.raises(ConfigError, match="train.batch_size"):
        run_experiment(tiny_config("epochs=1", "batch_size=8", "run.resume=true"))


def test_atomic_write_keeps_previous_file_when_interrupted(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_text("good")

    def half_write(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_write)
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_two_phase_freezes_quantum_branch_in_phase_a(tiny_config):
    config = tiny_config(
        "model.name=resnet34_qhead", "model.args={depth: 18, stem: small}", "warmup_epochs=1", "data.limit=16",
        "data.image_size=8", "optim.lr=1e-3",
    )
    trainer = Trainer(config, build_data(config.data, config.run.out_dir, progress=False), "resnet34_qhead", config.run.out_dir)
    model = trainer.model
    quantum = {"alpha_raw": model.alpha_raw, "q_head": model.q_head.weights, "pre_q": model.pre_q.weight}
    trainer._enter_phase(0)
    before = {k: v.detach().clone() for k, v in quantum.items()}
    backbone_before = model.conv1.weight.detach().clone()
    trainer._pass("train", training=True)
    assert model.alpha_raw.item() == -20.0
    for name, param in quantum.items():
        assert not param.requires_grad and param.grad is None, name
        assert torch.equal(param, before[name]), name
    assert not torch.equal(model.conv1.weight, backbone_before)
    trainer._enter_phase(1)
    assert model.alpha_raw.item() == 0.0
    trainer._pass("train", training=True)
    for name, param in quantum.items():
        assert param.requires_grad and param.grad is not None and param.grad.abs().sum() > 0, name


def test_warmup_needs_a_two_phase_model(tiny_config):
    config = tiny_config("warmup_epochs=1")
    with pytest.raises(ConfigError, match="set_phase"):
        run_experiment(config)
