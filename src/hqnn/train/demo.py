"""``hqnn demo``: the main job on the embedded default dataset (scikit-learn's digits).

Trains the blog CNN + 4-qubit QNN and its classical twin on the same split, seed and batches (the
``digits_cnn_qnn`` preset) and prints them side by side; under a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out-dir", default="runs", help="parent folder of the run directory (default runs/)")


def run(args: argparse.Namespace) -> int:
    from hqnn.train.cli import train
    from hqnn.train.presets import DEFAULT_PRESET

    overrides = [f"run.seed={args.seed}", f"run.out_dir={args.out_dir}", "run.progress=false"]
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    status = train(DEFAULT_PRESET, overrides)
    print(
        "One seed, one split: differences of a few points between the two rows are within seed-to-seed "
        "noise; rerun with --seed N to see it."
    )
    return status
