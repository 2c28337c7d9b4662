"""``hqnn predict MODEL FILES...``: the class, its probability and the top-k classes of each image.

Images are PNG/JPEG files, ``.npy`` arrays (one image or a stack), IDX image files, or folders of
them; each is prepared as the model's training data were (channels, resize, normalisation).

Examples::

    hqnn predict runs/digits_cnn_qnn/cnn_qnn digit.png more_digits/
    hqnn predict runs/digits_cnn_qnn/cnn_qnn/model.pt batch.npy --top-k 5 --json predictions.json
    hqnn predict runs/mnist_sqdr/sqdr_cnn t10k-images-idx3-ubyte.gz --csv predictions.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hqnn.exceptions import ConfigError

__all__ = ["add_arguments", "run", "predictions", "to_csv"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", type=Path, help="a model.pt or its folder (runs/<run>/<model>)")
    parser.add_argument("files", metavar="FILES", nargs="+", type=Path,
                        help="PNG/JPEG images, .npy arrays, IDX image files, or folders of them")
    parser.add_argument("--top-k", type=int, default=3, help="classes listed per item (default 3)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"),
                        help="where to run (default: the run's train.device)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the predictions as JSON")
    parser.add_argument("--csv", type=Path, metavar="OUT", help="also write the predictions as CSV")


def predictions(names: list[str], probabilities, classes: tuple[str, ...], top_k: int) -> list[dict[str, Any]]:
    """One ``{"item", "class", "probability", "top_k": [{"class", "probability"}, ...]}`` per item."""
    import torch

    values, indices = torch.topk(probabilities, min(top_k, len(classes)), dim=1)
    return [
        {"item": name, "class": classes[int(idx[0])], "probability": float(val[0]),
         "top_k": [{"class": classes[int(i)], "probability": float(v)} for v, i in zip(val, idx)]}
        for name, val, idx in zip(names, values, indices)
    ]


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Columns item, class, probability, then class_k / probability_k for each of the top k."""
    import csv
    import io

    k = len(rows[0]["top_k"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["item", "class", "probability", *(f"{c}_{j}" for j in range(1, k + 1) for c in ("class", "probability"))]
    )
    for row in rows:
        writer.writerow([row["item"], row["class"], repr(row["probability"]),
                         *(v for t in row["top_k"] for v in (t["class"], repr(t["probability"])))])
    return buffer.getvalue()


def _table(rows: list[dict[str, Any]]) -> str:
    width = max(4, *(len(r["item"]) for r in rows))
    cls = max(5, *(len(r["class"]) for r in rows))
    lines = [f"{'item':<{width}}  {'class':<{cls}}  probability  top-k"]
    for r in rows:
        top = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top_k"])
        lines.append(f"{r['item']:<{width}}  {r['class']:<{cls}}  {r['probability']:>11.4f}  {top}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from hqnn.train.evaluate_cli import check_output_path, write_output
    from hqnn.train.inference import find_models, load_trained, predict_proba, read_images

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1; got {args.top_k}")
    check_output_path(args.json, "--json")
    check_output_path(args.csv, "--csv")
    models = find_models(args.model)
    if len(models) > 1:
        raise ConfigError(
            f"{args.model} holds {len(models)} models; name one: {', '.join(str(m.parent) for m in models)}"
        )
    trained = load_trained(models[0], device=args.device)
    items = read_images(args.files, trained.image_channels)
    probabilities = predict_proba(trained, [image for _, image in items])
    rows = predictions([name for name, _ in items], probabilities, trained.classes, args.top_k)
    print(_table(rows))
    if args.json is not None:
        write_output(args.json, json.dumps({"model": str(models[0]), "predictions": rows}, indent=2) + "\n", "--json")
        print(f"wrote {args.json}")
    if args.csv is not None:
        write_output(args.csv, to_csv(rows), "--csv")
        print(f"wrote {args.csv}")
    return 0
