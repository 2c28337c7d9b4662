"""``hqnn train`` and ``hqnn demo`` through the top-level CLI."""

import json

from hqnn.cli import main

TINY = ["epochs=1", "data.limit=40", "data.image_size=12", "batch_size=16", "threads=1", "run.progress=false"]


def test_train_preset_with_overrides(tmp_path, capsys):
    assert main(["train", "digits_cnn_qnn", *TINY, f"run.out_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "cnn_qnn_plus_classical" in out and "run directory:" in out
    comparison = json.loads((tmp_path / "digits_cnn_qnn" / "comparison.json").read_text())
    assert [c["model_name"] for c in comparison] == ["cnn_qnn_plus", "cnn_qnn_plus_classical"]


def test_train_bare_overrides_use_default_preset(tmp_path):
    assert main(["train", *TINY, "compare=false", f"run.out_dir={tmp_path}"]) == 0
    assert (tmp_path / "digits_cnn_qnn" / "cnn_qnn_plus" / "summary.json").is_file()


def test_bad_key_returns_2_with_valid_keys(capsys):
    assert main(["train", "digits_cnn_qnn", "train.epoch=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'train.epoch'" in err and "train.epochs" in err


def test_bad_value_and_unknown_preset_return_2(capsys):
    assert main(["train", "digits_cnn_qnn", "epochs=three"]) == 2
    assert "train.epochs must be an int" in capsys.readouterr().err
    assert main(["train", "no_such_preset"]) == 2
    assert "presets: " in capsys.readouterr().err


def test_list_and_show(capsys):
    assert main(["train", "--list"]) == 0
    assert "cifar100_resnet34_qhead" in capsys.readouterr().out
    assert main(["train", "--show", "digits_cnn_qnn", "epochs=4"]) == 0
    assert "epochs: 4" in capsys.readouterr().out


def test_demo_runs_and_prints_table(tmp_path, capsys):
    assert main(["demo", "--epochs", "1", "--seeds", "1", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "test acc" in out and "cnn_qnn_plus_classical" in out
    assert "hybrid − twin macro-F1" in out and "report: " in out
    assert (tmp_path / "digits_cnn_qnn-study" / "report.html").is_file()
