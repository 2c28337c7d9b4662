"""Command-line interface: a thin adapter that parses arguments and calls the library.

Each subcommand lives in the package it drives, as a module with ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them together and turns library errors into one clear
line on stderr (exit code 2) instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hqnn.exceptions import HQNNError

__all__ = ["main"]

# subcommand -> (module, one-line help). Modules import their heavy dependencies inside run().
_COMMANDS = {
    "models": ("hqnn.models.cli", "list the registered models and their parameter counts"),
    "data": ("hqnn.data.cli", "inspect and convert datasets"),
    "demo": ("hqnn.train.demo", "the main job: hybrid vs its twin and its unentangled circuit over 5 seeds on digits"),
    "train": ("hqnn.train.cli", "train a preset or YAML config (hybrid and classical twin side by side)"),
    "compare": ("hqnn.train.compare_cli", "train every arm (hybrid, twin, no entanglement, frozen) over seeds; report"),
    "evaluate": ("hqnn.train.evaluate_cli",
                 "score a trained model on any split or dataset, also under shots and noise"),
    "predict": ("hqnn.train.predict_cli", "classify images with a trained model (class, probability, top-k)"),
    "export": ("hqnn.interop.cli", "export a seed or trained circuit as OpenQASM 2/3, or estimate its resources"),
    "bench": ("hqnn.bench.cli", "benchmark suites: circuits, scaling, noise (JSON reports)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hqnn", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in _COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except HQNNError as exc:
        message = " ".join(str(exc).split())  # one line, even when a library's message spans several
        print(f"hqnn {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hqnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
