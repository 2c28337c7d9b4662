"""``hqnn export``: write a seed recipe's or a trained model's circuit as OpenQASM, or print its
resource estimate.

Examples::

    hqnn export qasm --model runs/digits_cnn_qnn/cnn_qnn/model.pt -o cnn_qnn.qasm   # trained weights, inputs as inputs
    hqnn export qasm --recipe rezk_qnn --weights model.pt --input 0.1,0.2,0.3,0.4 --version 3 -o rezk.qasm
    hqnn export resources --recipe sqdr_reupload --coupling "0-1,1-2,2-3"
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

from hqnn.exceptions import ConfigError, DataError, ShapeError, ValueRangeError

__all__ = ["add_arguments", "run", "parse_coupling", "parse_floats", "load_weights", "model_circuit"]


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
    """``"0.1,-2,3e-1"`` -> finite floats.

    Raises:
        ConfigError: an entry that is not a number, or NaN / infinity.
    """
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise ConfigError(f"--input must be comma-separated numbers, e.g. 0.1,0.2; got {text!r}") from exc
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--input must be finite numbers (no NaN or infinity); got {text!r}")
    return values


def _finite(weights, source: str):
    import torch

    if not bool(torch.isfinite(weights).all()):
        raise ValueRangeError(f"{source}: the circuit weights hold NaN or infinite values; nothing to export")
    return weights


def load_weights(path: Path, n_weights: int):
    """Weights ``(n_weights,)`` from a ``.pt`` file: a tensor, a state dict, or a ``model.pt`` written by
    training (its ``state_dict``), with one matching entry (a QuantumLayer's ``weights`` or, failing
    that, the only floating tensor of that size).

    Raises:
        DataError: a missing, empty, truncated, corrupt or hostile file, or one holding neither a
            tensor nor a state dict.
        ShapeError: no (or several) tensors with ``n_weights`` values.
        ValueRangeError: NaN or infinite weights.
    """
    import torch

    from hqnn.train.inference import read_model_file

    obj = read_model_file(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if isinstance(obj, torch.Tensor):
        candidates = {"tensor": obj} if obj.is_floating_point() else {}
    elif isinstance(obj, dict):
        candidates = {k: v for k, v in obj.items()
                      if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() == n_weights}
        exact = {k: v for k, v in candidates.items() if str(k).split(".")[-1] == "weights"}
        candidates = exact if len(exact) == 1 else candidates
    else:
        raise DataError(f"{path}: holds a {type(obj).__name__}; expected a tensor or a state dict of tensors")
    if len(candidates) != 1 or next(iter(candidates.values())).numel() != n_weights:
        raise ShapeError(f"{path} must hold one tensor of {n_weights} weights for this recipe; found "
                         f"{ {k: tuple(v.shape) for k, v in candidates.items()} or 'none'}")
    return _finite(next(iter(candidates.values())).detach().reshape(-1).double(), str(path))


def model_circuit(path: Path, layer: str | None = None):
    """The circuit of a trained model and its trained weights ``(circuit, (n_weights,) float64)``.

    Args:
        path: the model's ``model.pt`` (or its folder).
        layer: the qualified name of the circuit layer, needed when the model has several.

    Raises:
        DataError: an unreadable or foreign model file.
        ConfigError: a model without a circuit layer, or an unknown or missing ``layer``.
        ValueRangeError: NaN or infinite weights.
    """
    from hqnn.models.arms import quantum_layers
    from hqnn.train.inference import load_trained

    trained = load_trained(path, device="cpu")
    layers = dict(quantum_layers(trained.model))
    if not layers:
        raise ConfigError(f"{trained.path}: {trained.model_name} has no circuit layer to export (a classical model)")
    if layer is None and len(layers) > 1:
        raise ConfigError(f"{trained.model_name} has {len(layers)} circuit layers; choose one with --layer: "
                          f"{', '.join(layers)}")
    if layer is not None and layer not in layers:
        raise ConfigError(f"{trained.model_name} has no circuit layer {layer!r}; its circuit layers: "
                          f"{', '.join(layers)}")
    chosen = layers[layer] if layer is not None else next(iter(layers.values()))
    return chosen.circuit, _finite(chosen.weights.detach().reshape(-1).double(), str(trained.path))


def _add_source(parser: argparse.ArgumentParser, recipes: list[str]) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--recipe", choices=recipes, help="seed circuit")
    source.add_argument("--model", type=Path, help="a trained model.pt (or its folder): its circuit and weights")
    parser.add_argument("--layer", help="with --model: the circuit layer to export when it has several (e.g. quantum)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hqnn.templates.recipes import RECIPES

    sub = parser.add_subparsers(dest="export_target", metavar="TARGET", required=True)
    qasm = sub.add_parser("qasm", help="write the circuit as OpenQASM with its weights (and one input) bound")
    _add_source(qasm, sorted(RECIPES))
    qasm.add_argument("--weights", type=Path,
                      help="with --recipe: .pt file with trained weights (tensor, state dict or model.pt)")
    qasm.add_argument("--input", help="one sample's inputs, comma-separated, finite (else QASM 3 `input` parameters); "
                      "write --input=-0.1,0.2 when the first is negative")
    qasm.add_argument("--version", type=int, choices=(2, 3), default=3, help="OpenQASM version (default 3)")
    qasm.add_argument("-o", "--output", type=Path, help="output file (default: standard output)")
    res = sub.add_parser("resources", help="print qubits, depth, gate counts and coupling-map fit as JSON")
    _add_source(res, sorted(RECIPES))
    res.add_argument("--coupling", help='hardware edges, e.g. "0-1,1-2" (undirected)')


def _circuit_and_weights(args: argparse.Namespace):
    from hqnn.templates.recipes import RECIPES

    if args.model is not None:
        if getattr(args, "weights", None) is not None:
            raise ConfigError("--weights goes with --recipe; a --model file holds its own weights")
        return model_circuit(args.model, args.layer)
    if args.layer is not None:
        raise ConfigError("--layer goes with --model")
    circuit = RECIPES[args.recipe]()
    weights = getattr(args, "weights", None)
    return circuit, None if weights is None else load_weights(weights, circuit.n_weights)


def run(args: argparse.Namespace) -> int:
    from hqnn.interop.qasm import to_qasm
    from hqnn.interop.resources import resources

    if args.export_target == "resources":
        coupling = parse_coupling(args.coupling) if args.coupling else None
        circuit, _ = _circuit_and_weights(args)
        print(json.dumps(asdict(resources(circuit, coupling)), indent=2))
        return 0
    inputs = parse_floats(args.input) if args.input is not None else None
    if args.output is not None and (args.output.is_dir() or not args.output.parent.is_dir()):
        raise ConfigError(f"-o {args.output}: not a file in an existing folder")
    circuit, weights = _circuit_and_weights(args)
    text = to_qasm(circuit, weights=weights, inputs=inputs, version=args.version)
    if args.output:
        from hqnn.train.checkpoint import atomic_write

        def write(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

        try:
            atomic_write(args.output, write)
        except OSError as exc:
            raise ConfigError(f"-o {args.output}: cannot write ({exc.strerror or exc})") from exc
        print(f"wrote {args.output} (OpenQASM {args.version}, {circuit!r})")
    else:
        print(text, end="")
    return 0
