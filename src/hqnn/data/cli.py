"""``hqnn data``: list the datasets, show one's size and class counts, convert WM-811K to ``.npz``."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``list``, ``info`` and ``convert-wm811k`` sub-commands to ``parser``."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="list the registered datasets")
    info = sub.add_parser("info", help="size, classes and class counts of a dataset, per split")
    info.add_argument("name", help="dataset name (see 'hqnn data list')")
    info.add_argument("--path", default=None, help="where the dataset files are")
    convert = sub.add_parser("convert-wm811k", help="convert LSWMD.pkl[.xz] once to a pickle-free .npz")
    convert.add_argument("src", help="the LSWMD pickle (trusted: loading a pickle can run code)")
    convert.add_argument("dst", help="the .npz to write")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; prints its result and returns 0 (library errors propagate)."""
    from hqnn.data import registry

    if args.data_command == "list":
        for name in registry.list_datasets():
            info = registry.dataset_info(name)
            shape = "x".join(map(str, info.image_shape)) if info.image_shape else "varies"
            print(f"{name:14s} classes={info.n_classes or '?':<4} shape={shape:<8} splits={','.join(info.splits)}  "
                  f"path: {info.path_hint}")
        return 0
    if args.data_command == "info":
        return _info(args.name, args.path)
    from hqnn.data.wm811k import convert_wm811k, load_wm811k

    written = convert_wm811k(args.src, args.dst)
    print(f"wrote {written} ({len(load_wm811k(written, labelled_only=False))} maps)")
    return 0


def _info(name: str, path) -> int:
    import numpy as np

    from hqnn.data import registry

    info = registry.dataset_info(name)
    splits = ("all",) if name == "wm811k" else info.splits
    for split in splits:
        data = registry.load_dataset(name, path, split, **({"labelled_only": False} if name == "wm811k" else {}))
        counts = data.class_counts()
        classes = data.classes
        print(f"{name} [{split}]: {len(data)} items, {len(classes)} classes")
        if name == "wm811k":
            print(f"  unlabelled: {int((data.labels < 0).sum())}; map sizes vary")
            if data.split_tags is not None:
                tags, tag_counts = np.unique(data.split_tags, return_counts=True)
                print("  trianTestLabel: " + ", ".join(f"{t or '(none)'} {c}" for t, c in zip(tags, tag_counts)))
        else:
            print(f"  image shape (C, H, W): {data.image_shape}")
        for cls, count in zip(classes, counts.tolist()):
            print(f"  {cls:>12s}: {count}")
    return 0
