"""``hqnn compare PRESET [key=value ...] [--seeds N] [--arms A,B,...]``: a study over seeds and arms.

Trains each arm (hybrid, its classical twin, the circuit without entanglement, the frozen circuit)
with each seed on one split and one recipe, then prints the arms' scores, one verdict line per
comparison with the hybrid, and the path of the HTML report (:func:`hqnn.train.run_study`).

Examples::

    hqnn compare digits_cnn_qnn                          # 5 seeds, arms hybrid, twin, no_entanglement
    hqnn compare digits_cnn_qnn --seeds 10 --arms hybrid,twin,no_entanglement,frozen
    hqnn compare digits_cnn_qnn epochs=5 --out runs/short-study
    hqnn compare digits_cnn_qnn run.resume=true          # continue an interrupted study
    hqnn compare digits_cnn_qnn --workers 4              # 4 runs at a time on this machine
    hqnn compare digits_cnn_qnn --shard 0/3 --out s      # machine 1 of 3 (then merge: docs/training.md)
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_arguments", "run", "compare"]


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=5,
                        help="seeds run.seed, run.seed+1, ... (default 5; 3 or more for a test)")
    parser.add_argument(
        "--arms", default="hybrid,twin,no_entanglement",
        help="comma-separated arms among hybrid, twin, no_entanglement, frozen (default hybrid,twin,no_entanglement)",
    )
    parser.add_argument("--out", default=None,
                        help="study directory (default <run.out_dir>/<run.name or preset>-study)")
    parser.add_argument(
        "--workers", type=int, default=1, help="(seed, arm) runs trained at once in worker processes (default 1)"
    )
    parser.add_argument(
        "--shard", default=None, metavar="INDEX/COUNT",
        help="train only shard INDEX (0-based) of COUNT of the (seed, arm) runs, e.g. 0/3; no report",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", default=None, metavar="CONFIG_OR_PRESET",
        help="preset name (see `hqnn train --list`) or YAML config file; default: digits_cnn_qnn",
    )
    # REMAINDER, re-parsed in run(), so that the options may also come between or after the overrides
    parser.add_argument(
        "overrides", nargs=argparse.REMAINDER, metavar="KEY=VALUE",
        help="config overrides, e.g. epochs=5 run.resume=true"
    )
    _add_options(parser)


def compare(
    preset: str, overrides: Sequence[str], seeds: int, arms: Sequence[str], out: str | Path | None = None,
    verbose: bool = False, workers: int = 1, shard: tuple[int, int] | None = None,
) -> int:
    """Resolve ``preset`` with ``overrides``, run the study, print the verdict table and the
    report's path. Returns the exit status. Unless ``verbose``, the trainer's per-epoch lines are
    left out of the log (the study logs one line per run)."""
    from hqnn.train.presets import load_config
    from hqnn.train.report import verdict_table
    from hqnn.train.study import run_study

    trainer_log = logging.getLogger("hqnn.train.trainer")
    previous = trainer_log.level
    if not verbose:
        trainer_log.setLevel(logging.WARNING)
    try:
        result = run_study(load_config(preset, overrides), seeds, tuple(arms), out, workers=workers, shard=shard)
    finally:
        trainer_log.setLevel(previous)
    from hqnn.train.distributed import context

    if not context().is_main:  # under torchrun: rank 0 prints
        return 0
    if result is None:
        assert shard is not None  # only a shard's run has no result
        print(f"shard {shard[0]}/{shard[1]} done; merge the shards' runs/ folders, "
              "then run without --shard plus run.resume=true")
        return 0
    print(verdict_table(result))
    print(f"report: {result.report_html}")
    return 0


def run(args: argparse.Namespace) -> int:
    from hqnn.exceptions import ConfigError
    from hqnn.train.presets import DEFAULT_PRESET

    options = argparse.ArgumentParser(prog="hqnn compare")
    _add_options(options)
    args, overrides = options.parse_known_args(list(args.overrides), namespace=args)  # keeps options given first
    stray = [token for token in overrides if token.startswith("-")]
    if stray:
        raise ConfigError(
            f"unknown option(s) {', '.join(stray)}; options of hqnn compare: --seeds, --arms, --out, --workers, --shard"
        )
    preset = args.config
    if preset is not None and "=" in preset:  # `hqnn compare epochs=3`: overrides of the default preset
        overrides = [preset, *overrides]
        preset = None
    arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    shard = None
    if args.shard is not None:
        index, _, count = args.shard.partition("/")
        if not (index.isdigit() and count.isdigit()):
            raise ConfigError(f"--shard must be INDEX/COUNT, e.g. 0/3; got {args.shard!r}")
        shard = (int(index), int(count))
    return compare(
        preset or DEFAULT_PRESET, overrides, args.seeds, arms, args.out, getattr(args, "verbose", False), args.workers,
        shard,
    )
