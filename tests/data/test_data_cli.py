"""``hqnn data`` sub-commands, called through their run() function."""

from __future__ import annotations

import argparse

import pytest
from data_writers import lswmd_frame, write_lswmd, write_mnist

from hqnn.data import cli, load_wm811k
from hqnn.exceptions import DataError


def _run(**kwargs) -> int:
    return cli.run(argparse.Namespace(**kwargs))


def test_list_and_info(tmp_path, capsys):
    assert _run(data_command="list") == 0
    assert "wm811k" in capsys.readouterr().out
    write_mnist(tmp_path, n_train=20, n_test=10)
    assert _run(data_command="info", name="mnist", path=str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "mnist [train]: 20 items, 10 classes" in out and "mnist [test]: 10 items" in out
    with pytest.raises(DataError, match="unknown dataset"):
        _run(data_command="info", name="nope", path=None)


def test_convert_and_info_wm811k(tmp_path, capsys):
    pytest.importorskip("pandas")
    src = write_lswmd(tmp_path / "LSWMD.pkl.xz", lswmd_frame())
    assert _run(data_command="convert-wm811k", src=str(src), dst=str(tmp_path / "wm.npz")) == 0
    assert "9 maps" in capsys.readouterr().out
    assert len(load_wm811k(tmp_path / "wm.npz")) == 6
    assert _run(data_command="info", name="wm811k", path=str(tmp_path / "wm.npz")) == 0
    out = capsys.readouterr().out
    assert "9 items" in out and "unlabelled: 3" in out and "Training 3" in out


def test_parser_accepts_the_commands():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["convert-wm811k", "a.pkl", "b.npz"])
    assert (args.data_command, args.src, args.dst) == ("convert-wm811k", "a.pkl", "b.npz")
    assert parser.parse_args(["info", "mnist", "--path", "p"]).path == "p"
