"""``hqnn models``: list the registered models with their parameter counts."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default=None, help="shell-style name filter, e.g. 'hcqdl*'")
    parser.add_argument("--num-classes", type=int, default=None, help="count parameters for this many classes")
    parser.add_argument("--in-chans", type=int, default=None, help="count parameters for this many input channels")


def run(args: argparse.Namespace) -> int:
    """Build each matching model (with the given overrides) and print name, trainable parameters, summary."""
    from hqnn.exceptions import ConfigError
    from hqnn.models import create_model, get_model_entry, list_models

    overrides = {k: v for k, v in (("num_classes", args.num_classes), ("in_chans", args.in_chans)) if v is not None}
    for key, value in overrides.items():
        if value < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be a positive integer; got {value}")
    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no model matches {args.pattern!r}; the models are: {', '.join(list_models())}")
    width = max(len(n) for n in names)
    print(f"{'model':<{width}}  {'params':>12}  summary")
    for name in names:
        model = create_model(name, **overrides)
        count = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(f"{name:<{width}}  {count:>12,}  {get_model_entry(name).summary}")
    return 0
