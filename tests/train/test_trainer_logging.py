"""What a training run tells and records as it goes: the run-time estimate, progress output that
suits a log file, training-only time, TensorBoard files, circuit diagnostics, and extending a run."""

import io
import json
import logging
import sys
import time

import pytest
import torch

from hqnn.exceptions import ConfigError
from hqnn.models import create_model
from hqnn.train.checkpoint import load_checkpoint
from hqnn.train.config import load_yaml
from hqnn.train.experiment import run_experiment
from hqnn.train.trainer import Trainer, simulator_method

_TIMING = {"seconds", "val_seconds", "samples_per_s"}


def test_run_time_estimate_is_logged_during_the_first_epoch(tiny_config, caplog):
    # 96 training items in batches of 16: the estimate comes after batch 4 of epoch 1, before its end
    config = tiny_config("data.limit=96", "epochs=2")
    with caplog.at_level(logging.INFO, logger="hqnn.train.trainer"):
        run_experiment(config)
    messages = [r.getMessage() for r in caplog.records]
    estimates = [k for k, m in enumerate(messages) if "estimated run time" in m]
    first_epoch = next(k for k, m in enumerate(messages) if "epoch 1/2" in m)
    assert len(estimates) == 1 and estimates[0] < first_epoch
    assert "2 epoch(s) x 6 batches" in messages[estimates[0]]
    assert "| eta " in messages[first_epoch]


def test_short_epochs_still_get_an_estimate(tiny_config, caplog):
    with caplog.at_level(logging.INFO, logger="hqnn.train.trainer"):
        run_experiment(tiny_config("epochs=1", "data.limit=16"))  # one batch per epoch
    assert sum("estimated run time" in r.getMessage() for r in caplog.records) == 1


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_only_on_a_terminal(tiny_config, monkeypatch, capsys):
    # stderr redirected (not a TTY): no carriage-return updates, one log line per epoch instead
    run_experiment(tiny_config("epochs=1", "run.progress=true", "run.name=file"))
    assert "\r" not in capsys.readouterr().err
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    run_experiment(tiny_config("epochs=1", "run.progress=true", "run.name=tty"))
    assert "\r" in terminal.getvalue() and "cnn_qnn train 1" in terminal.getvalue()


def test_cli_output_to_a_file_has_no_carriage_returns(tiny_config, tmp_path):
    import subprocess

    log_file = tmp_path / "train.log"
    args = [
        "epochs=1", "data.limit=32", "data.image_size=12", "batch_size=8", "compare=false", "threads=1",
        "run.progress=true", f"run.out_dir={tmp_path / 'runs'}",
    ]
    with open(log_file, "w") as stderr:
        status = subprocess.run(
            [sys.executable, "-m", "hqnn.cli", "train", "digits_cnn_qnn", *args], stdout=subprocess.DEVNULL,
            stderr=stderr, timeout=300,
        ).returncode
    text = log_file.read_text()
    assert status == 0, text
    assert "\r" not in text and "estimated run time" in text and "epoch 1/1" in text


def test_seconds_count_training_only(tiny_config, monkeypatch):
    original = Trainer._pass

    def slow_validation(self, split, training):
        if not training:
            time.sleep(0.3)
        return original(self, split, training)

    monkeypatch.setattr(Trainer, "_pass", slow_validation)
    result = run_experiment(tiny_config("epochs=1")).results[0]
    (row,) = result.history
    assert row["val_seconds"] >= 0.3 and row["seconds"] < 0.3
    assert result.seconds == row["seconds"]


def test_tensorboard_event_files_per_model(tiny_config):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = run_experiment(tiny_config("compare=true")).results
    for fit in result:
        folder = fit.model_dir / "tensorboard"
        assert list(folder.glob("events.out.tfevents.*")), fit.model_name
        events = EventAccumulator(str(folder))
        events.Reload()
        tags = set(events.Tags()["scalars"])
        assert {"loss/train", "loss/val", "f1/val", "balanced_accuracy/val", "lr", "samples_per_s"} <= tags
        loss = events.Scalars("loss/val")
        assert [e.step for e in loss] == [1, 2]
        assert [e.value for e in loss] == pytest.approx([row["val_loss"] for row in fit.history])
    hybrid_tags = EventAccumulator(str(result[0].model_dir / "tensorboard")).Reload().Tags()["scalars"]
    assert any(tag.endswith("grad_norm") for tag in hybrid_tags)  # circuit diagnostics too


def test_no_tensorboard_files_when_switched_off(tiny_config):
    fit = run_experiment(tiny_config("epochs=1", "run.tensorboard=false")).results[0]
    assert not (fit.model_dir / "tensorboard").exists()


def test_circuit_diagnostics_in_rows_summary_and_log(tiny_config, monkeypatch, caplog):
    from hqnn.train.diagnostics import CircuitMonitor

    monkeypatch.setattr(CircuitMonitor, "warnings", lambda self, history: [f"circuit looked at {len(history)} epochs"])
    with caplog.at_level(logging.WARNING, logger="hqnn.train.trainer"):
        fit = run_experiment(tiny_config("epochs=1")).results[0]
    assert {"head.1.grad_norm", "head.1.angle_std", "head.1.saturated"} <= set(fit.history[0])
    assert fit.history[0]["head.1.grad_norm"] > 0
    assert fit.diagnostics == ["circuit looked at 1 epochs"]
    assert json.loads((fit.model_dir / "summary.json").read_text())["diagnostics"] == fit.diagnostics
    assert "circuit looked at 1 epochs" in caplog.text
    quiet = run_experiment(tiny_config("epochs=1", "train.diagnostics=false", "run.name=quiet")).results[0]
    assert not any("grad_norm" in key for key in quiet.history[0]) and quiet.diagnostics == []


def test_simulator_method_is_none_without_a_circuit():
    classical = create_model("cnn_qnn_classical", num_classes=10, in_chans=1, img_size=12)
    assert simulator_method(classical, torch.device("cpu")) is None


def test_extending_a_finished_run_equals_training_straight(tiny_config, tmp_path):
    straight = run_experiment(tiny_config("epochs=3", "run.name=straight")).results[0]
    run_experiment(tiny_config("epochs=2"))
    extended = run_experiment(tiny_config("epochs=3", "run.resume=true")).results[0]
    assert [{k: v for k, v in r.items() if k not in _TIMING} for r in extended.history] == [
        {k: v for k, v in r.items() if k not in _TIMING} for r in straight.history
    ]
    assert extended.test == straight.test and extended.best_epoch == straight.best_epoch
    run_dir = tmp_path / "runs" / "tiny"
    assert load_yaml(run_dir / "config.yaml")["train"]["epochs"] == 3
    assert load_checkpoint(run_dir / "cnn_qnn" / "checkpoint.pt")["epoch"] == 3


def test_extended_onecycle_schedule_is_rebuilt_for_the_new_length(tiny_config):
    run_experiment(tiny_config("schedule.name=onecycle", "epochs=2"))
    history = run_experiment(tiny_config("schedule.name=onecycle", "epochs=3", "run.resume=true")).results[0].history
    # the lr of epoch 3 is where a 3-epoch OneCycle (3 batches per epoch) stands after 6 steps
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([weight], lr=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, epochs=3, steps_per_epoch=3, pct_start=0.3)
    for _ in range(6):
        optimizer.step()
        schedule.step()
    assert history[2]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
    assert history[1]["lr"] != pytest.approx(history[2]["lr"])


def test_resume_refuses_fewer_epochs_than_trained(tiny_config):
    run_experiment(tiny_config("epochs=2"))
    with pytest.raises(ConfigError, match="already trained 2 epochs"):
        run_experiment(tiny_config("epochs=1", "run.resume=true"))


def test_time_left_adds_training_batches_and_evaluated_items(tiny_config):
    from hqnn.train.loaders import build_data

    config = tiny_config()  # 2 epochs of 3 batches of 16; 48 validation and 48 test items
    trainer = Trainer(config, build_data(config.data, config.run.out_dir, progress=False), "cnn_qnn", config.run.out_dir)
    trainer._train_batch_seconds = 0.1
    # before any validation pass an evaluated item counts as a third of a trained one (0.1 / 16 / 3 s)
    assert trainer._seconds_left(0, False) == pytest.approx(6 * 0.1 + (2 * 48 + 48) * 0.1 / 48)
    trainer.epoch, trainer._eval_item_seconds = 1, 0.01
    assert trainer._seconds_left(2, False) == pytest.approx(1 * 0.1 + (48 + 48) * 0.01)
    assert trainer._seconds_left(3, True) == pytest.approx(48 * 0.01)


def test_resumed_rows_with_new_columns_still_make_one_csv(tiny_config, tmp_path):
    import csv

    run_experiment(tiny_config("epochs=1", "train.diagnostics=false"))
    run_experiment(tiny_config("epochs=2", "train.diagnostics=true", "run.resume=true"))
    with open(tmp_path / "runs" / "tiny" / "cnn_qnn" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and rows[0]["head.1.grad_norm"] == "" and float(rows[1]["head.1.grad_norm"]) > 0


def test_extending_a_two_phase_run_extends_phase_b(tiny_config):
    args = ("model.name=resnet34_qhead", "model.args={depth: 18, stem: small}", "warmup_epochs=1", "data.limit=16",
            "data.image_size=8", "compare=false")
    straight = run_experiment(tiny_config(*args, "epochs=3", "run.name=straight")).results[0]
    run_experiment(tiny_config(*args, "epochs=2"))
    extended = run_experiment(tiny_config(*args, "epochs=3", "run.resume=true")).results[0]
    assert [r["phase"] for r in extended.history] == ["A", "B", "B"]
    assert [r["val_loss"] for r in extended.history] == [r["val_loss"] for r in straight.history]
    assert [r["alpha"] for r in extended.history] == [r["alpha"] for r in straight.history]
    assert extended.history[0]["alpha"] < 1e-8 < extended.history[1]["alpha"]
    assert extended.test == straight.test
