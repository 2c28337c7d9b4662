"""``hqnn export``: write a seed recipe as OpenQASM, or print its resource estimate.

Examples::

    hqnn export qasm --recipe rezk_qnn --weights model.pt --input 0.1,0.2,0.3,0.4 --version 3 -o rezk.qasm
    hqnn export resources --recipe sqdr_reupload --coupling "0-1,1-2,2-3"
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from hqnn.exceptions import ConfigError, ShapeError

__all__ = ["add_arguments", "run", "parse_coupling", "parse_floats", "load_weights"]


def parse_coupling(text: str) -> list[tuple[int, int]]:
    """``"0-1,1-2"`` -> ``[(0, 1), (1, 2)]``.

    Raises:
        ConfigError: an entry that is not two integers joined by "-".
    """
    edges = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        parts = item.split("-")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"a coupling edge is written 'a-b' with wire numbers, e.g. '0-1,1-2'; got {item!r}")
        edges.append((int(parts[0]), int(parts[1])))
    return edges


def parse_floats(text: str) -> list[float]:
    """``"0.1,-2,3e-1"`` -> floats.

    Raises:
        ConfigError: an entry that is not a number.
    """
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError(f"--input must be comma-separated numbers, e.g. 0.1,0.2; got {text!r}") from exc


def load_weights(path: Path, n_weights: int):
    """Weights ``(n_weights,)`` from a ``.pt`` file: a tensor, or a state dict with one matching entry
    (a QuantumLayer's ``weights`` or, failing that, the only tensor of that size).

    Raises:
        ShapeError: no (or several) tensors with ``n_weights`` values.
    """
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, torch.Tensor):
        candidates = {"tensor": obj}
    else:
        candidates = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor) and v.numel() == n_weights}
        exact = {k: v for k, v in candidates.items() if k.split(".")[-1] == "weights"}
        candidates = exact if len(exact) == 1 else candidates
    if len(candidates) != 1 or next(iter(candidates.values())).numel() != n_weights:
        raise ShapeError(f"{path} must hold one tensor of {n_weights} weights for this recipe; found "
                         f"{ {k: tuple(v.shape) for k, v in candidates.items()} or 'none'}")
    return next(iter(candidates.values())).reshape(-1).double()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hqnn.templates.recipes import RECIPES

    sub = parser.add_subparsers(dest="export_target", metavar="TARGET", required=True)
    qasm = sub.add_parser("qasm", help="write the circuit as OpenQASM with its weights (and one input) bound")
    qasm.add_argument("--recipe", required=True, choices=sorted(RECIPES), help="seed circuit")
    qasm.add_argument("--weights", type=Path, help=".pt file with the trained weights (tensor or state dict)")
    qasm.add_argument("--input", help="one sample's inputs, comma-separated (else QASM 3 `input` parameters)")
    qasm.add_argument("--version", type=int, choices=(2, 3), default=3, help="OpenQASM version (default 3)")
    qasm.add_argument("-o", "--output", type=Path, help="output file (default: standard output)")
    res = sub.add_parser("resources", help="print qubits, depth, gate counts and coupling-map fit as JSON")
    res.add_argument("--recipe", required=True, choices=sorted(RECIPES), help="seed circuit")
    res.add_argument("--coupling", help='hardware edges, e.g. "0-1,1-2" (undirected)')


def run(args: argparse.Namespace) -> int:
    from hqnn.interop.qasm import to_qasm
    from hqnn.interop.resources import resources
    from hqnn.templates.recipes import RECIPES

    circuit = RECIPES[args.recipe]()
    if args.export_target == "resources":
        coupling = parse_coupling(args.coupling) if args.coupling else None
        print(json.dumps(asdict(resources(circuit, coupling)), indent=2))
        return 0
    weights = load_weights(args.weights, circuit.n_weights) if args.weights else None
    inputs = parse_floats(args.input) if args.input else None
    text = to_qasm(circuit, weights=weights, inputs=inputs, version=args.version)
    if args.output:
        args.output.write_text(text)
        print(f"wrote {args.output} (OpenQASM {args.version}, {circuit!r})")
    else:
        print(text, end="")
    return 0
