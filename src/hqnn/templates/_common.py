"""Helpers shared by the templates: wire lists and weight-shape validation."""

from __future__ import annotations

from collections.abc import Sequence

from hqnn.exceptions import ShapeError, WireError


def wire_list(wires, circuit) -> tuple[int, ...]:
    """``wires`` as a tuple, defaulting to every wire of ``circuit``."""
    return tuple(range(circuit.n_qubits)) if wires is None else tuple(int(w) for w in wires)


def check_shape(name: str, given: Sequence[int], expected: Sequence[int], context: str) -> None:
    if tuple(given) != tuple(expected):
        raise ShapeError(f"{name} weights must have shape {tuple(expected)} {context}; got {tuple(given)}")


def check_count(name: str, n_wires: int, minimum: int) -> None:
    if n_wires < minimum:
        raise WireError(f"{name} needs at least {minimum} wire(s); got {n_wires}")
