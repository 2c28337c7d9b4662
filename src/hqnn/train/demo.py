"""``hqnn demo``: the main job, a study of the default preset on the embedded digits dataset.

Trains the default preset's hybrid (``digits_cnn_qnn``: the blog's CNN + 4-qubit QNN), its classical
twin and the same circuit without entanglement, each with 5 seeds on one split and one recipe, then
prints the arms' scores, the verdict of each comparison with the hybrid (mean difference of test
macro-F1 over seeds, its 95% interval, the paired t-test p-value) and the path of the HTML report.
It is ``hqnn compare digits_cnn_qnn --seeds 5``: 15 trainings, 66-82 s of CPU time in one thread
(two runs on the shared 2-core development machine).
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per arm (default 5; 3 or more for a test)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--out-dir", default="runs", help="parent folder of the study directory (default runs/)")


def run(args: argparse.Namespace) -> int:
    from hqnn.models.arms import DEFAULT_ARMS
    from hqnn.train.compare_cli import compare
    from hqnn.train.presets import DEFAULT_PRESET

    overrides = [f"run.seed={args.seed}", f"run.out_dir={args.out_dir}", "run.progress=false"]
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    return compare(DEFAULT_PRESET, overrides, args.seeds, DEFAULT_ARMS, verbose=getattr(args, "verbose", False))
