"""Kill ``hqnn train`` with SIGKILL at random points (and during checkpoint writes) several times,
resume with ``run.resume=true`` until it finishes, and check that the metrics and the weights equal
those of an uninterrupted run exactly.

Each training run is a real ``python -m hqnn.cli train`` process. A small wrapper (below) reports
when the process is ready and, on request, pauses inside a checkpoint write (after the temporary
file is written, before it replaces ``checkpoint.pt``) so that a kill lands there for certain. The
kill times are drawn from a seeded generator, so a failure reproduces.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

if not hasattr(signal, "SIGKILL"):  # pragma: no cover - Windows
    pytest.skip("needs SIGKILL", allow_module_level=True)

OVERRIDES = [
    "model.name=cnn_qnn", "model.twin=cnn_qnn_classical", "epochs=12", "data.limit=240", "data.image_size=12", "batch_size=16", "train.compare=false", "train.threads=1",
    "run.progress=false", "run.tensorboard=false",
]
TIMING_KEYS = ("seconds", "samples_per_s")  # measured, so they differ between runs

# Runs the CLI; writes "ready" to $HQNN_TEST_EVENTS once imported, "epoch" after each checkpoint,
# and "writing <file>" while the $HQNN_TEST_PAUSE_AT-th checkpoint write of the process pauses.
_WRAPPER = r"""
import os, sys, time
from pathlib import Path
import hqnn.train.checkpoint as checkpoint
from hqnn.cli import main

events = Path(os.environ["HQNN_TEST_EVENTS"])
pause_at = int(os.environ.get("HQNN_TEST_PAUSE_AT", "0"))
real_atomic_write = checkpoint.atomic_write
writes = 0

def log(line):
    with open(events, "a") as handle:
        handle.write(line + "\n")

def atomic_write(path, write):
    def slow_write(tmp):
        global writes
        write(tmp)
        if Path(path).name == checkpoint.CHECKPOINT_NAME:
            writes += 1
            if writes == pause_at:
                log(f"writing {path}")
                time.sleep(60)
    result = real_atomic_write(path, slow_write)
    if Path(path).name == checkpoint.CHECKPOINT_NAME:
        log("epoch")
    return result

checkpoint.atomic_write = atomic_write
log("ready")
sys.exit(main(sys.argv[1:]))
"""


def _spawn(out: Path, name: str, events: Path, resume: bool, pause_at: int = 0) -> subprocess.Popen:
    argv = ["train", "digits_cnn_qnn", *OVERRIDES, f"run.out_dir={out}", f"run.name={name}",
            f"run.resume={'true' if resume else 'false'}"]
    env = {**os.environ, "HQNN_TEST_EVENTS": str(events), "HQNN_TEST_PAUSE_AT": str(pause_at), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _WRAPPER, *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(events: Path, text: str, process: subprocess.Popen, count: int = 1, timeout: float = 120.0) -> bool:
    """Wait until ``events`` has ``count`` lines starting with ``text`` (False when the process ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if events.exists() and sum(line.startswith(text) for line in events.read_text().splitlines()) >= count:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    raise TimeoutError(f"no {text!r} event within {timeout} s")


def _kill(process: subprocess.Popen) -> bool:
    """SIGKILL ``process``; True when it was still running (the kill interrupted it)."""
    running = process.poll() is None
    if running:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    return running


def _finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]


def _results(run_dir: Path):
    model_dir = run_dir / "cnn_qnn"
    rows = json.loads((model_dir / "metrics.json").read_text())
    rows = [{k: v for k, v in row.items() if not k.endswith(TIMING_KEYS)} for row in rows]
    summary = json.loads((model_dir / "summary.json").read_text())
    weights = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    return rows, summary["test"], summary["best_epoch"], weights


def test_sigkill_at_random_points_then_resume_is_exact(tmp_path):
    out = tmp_path / "runs"
    reference = _spawn(out, "reference", tmp_path / "reference.events", resume=False)
    _finish(reference)

    rng = random.Random(20261201)
    run_dir = out / "killed"
    plan = ["random", "checkpoint", "random", "checkpoint", "random"]
    epochs_before_kill = iter(rng.sample([0, 1, 2], 3))  # the random kills wait for 0, 1 and 2 epochs, in some order
    interrupted, resumed_from = [], []
    for index, kind in enumerate(plan):
        events = tmp_path / f"kill{index}.events"
        # a kill before config.yaml leaves nothing to resume: start afresh then (as a user would)
        resume = (run_dir / "config.yaml").is_file()
        if run_dir.exists() and not resume:
            shutil.rmtree(run_dir)
        resumed_from.append(resume and (run_dir / "cnn_qnn" / "checkpoint.pt").is_file())
        # "checkpoint": killed while writing its second checkpoint, with the first one in place
        process = _spawn(out, "killed", events, resume, pause_at=2 if kind == "checkpoint" else 0)
        if kind == "checkpoint":
            reached = _wait_for(events, "writing", process)
        else:
            # after 0, 1 or 2 more epochs, somewhere inside the next one (or its checkpoint write)
            reached = _wait_for(events, "ready", process) and _wait_for(events, "epoch", process,
                                                                         count=next(epochs_before_kill))
            time.sleep(rng.uniform(0.0, 0.15))
        interrupted.append((kind, reached and _kill(process), events.read_text().count("epoch\n")))
        if kind == "checkpoint" and reached:
            assert list((run_dir / "cnn_qnn").glob(".checkpoint.pt.tmp")), "the kill did not land in a write"
    resumed_from.append((run_dir / "cnn_qnn" / "checkpoint.pt").is_file())
    final = _spawn(out, "killed", tmp_path / "final.events", resume=(run_dir / "config.yaml").is_file())
    _finish(final)
    print(f"\nkills (kind, landed, epochs this process): {interrupted}; resumed from a checkpoint: {resumed_from}")

    # both pauses inside a checkpoint write were killed, and most random kills hit a running process
    assert sum(kind == "checkpoint" and killed for kind, killed, _ in interrupted) == 2, interrupted
    assert sum(kind == "random" and killed for kind, killed, _ in interrupted) >= 2, interrupted
    assert sum(resumed_from) >= 4, resumed_from  # the later runs continued from a checkpoint, not from scratch
    want_rows, want_test, want_best, want_weights = _results(out / "reference")
    got_rows, got_test, got_best, got_weights = _results(run_dir)
    assert len(want_rows) == 12
    assert got_rows == want_rows
    assert got_test == want_test and got_best == want_best
    assert want_weights.keys() == got_weights.keys()
    for key, tensor in want_weights.items():
        assert torch.equal(tensor, got_weights[key]), key
