"""``hqnn train CONFIG_OR_PRESET [key=value ...]``: train what a preset or YAML config describes.

Examples::

    hqnn train --list                                   # the presets
    hqnn train --show digits_cnn_qnn epochs=3           # the resolved config (options before the preset)
    hqnn train digits_cnn_qnn epochs=3 optim.lr=3e-3    # a preset with overrides
    hqnn train mnist_sqdr data.path=/data/mnist
    hqnn train runs/digits_cnn_qnn/config.yaml          # rerun a run exactly
    hqnn train digits_cnn_qnn run.name=digits_cnn_qnn run.resume=true
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["add_arguments", "run", "train"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", default=None, metavar="CONFIG_OR_PRESET",
        help="preset name (see --list) or YAML config file; default: digits_cnn_qnn",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="config overrides, e.g. epochs=3 optim.lr=3e-4 model.args.img_size=16 run.resume=true",
    )
    parser.add_argument("--list", action="store_true", help="list the presets and exit")
    parser.add_argument("--show", action="store_true", help="print the resolved config as YAML and exit")


def train(preset: str, overrides: Sequence[str], show: bool = False) -> int:
    """Resolve ``preset`` with ``overrides``, train it and print the comparison table (or, with
    ``show``, print the resolved config only). Returns the exit status."""
    import yaml

    from hqnn.train.config import config_to_dict
    from hqnn.train.experiment import comparison_table, run_experiment
    from hqnn.train.presets import load_config

    config = load_config(preset, overrides)
    if show:
        print(yaml.safe_dump(config_to_dict(config), sort_keys=False), end="")
        return 0
    result = run_experiment(config)
    from hqnn.train.distributed import context

    if not context().is_main:  # under torchrun every rank has the result; rank 0 prints it
        return 0
    print(comparison_table(result.results))
    print(f"run directory: {result.run_dir}")
    return 0


def run(args: argparse.Namespace) -> int:
    from hqnn.train.presets import DEFAULT_PRESET, list_presets, load_config

    if args.list:
        for name in list_presets():
            print(f"{name:<30} {load_config(name).description}")
        return 0
    preset, overrides = args.config, list(args.overrides)
    if preset is not None and "=" in preset:  # `hqnn train epochs=3`: overrides of the default preset
        preset, overrides = None, [preset, *overrides]
    return train(preset or DEFAULT_PRESET, overrides, args.show)
