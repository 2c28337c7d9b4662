"""Hypothesis strategies for random circuits over the whole gate set, shared by the property tests.

A drawn :class:`CircuitSpec` is plain data (so hypothesis prints a readable falsifying example);
:meth:`CircuitSpec.build` turns it into a :class:`hqnn.sim.Circuit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from hqnn.sim import GATES, Circuit
from reference import random_unitary

GATE_NAMES = sorted(GATES) + ["QubitUnitary"]
DEFAULT_EXAMPLES = 60  # max_examples of the "hqnn" profile (tests/conftest.py)


def examples(n: int) -> int:
    """An example budget for a slow property test: ``n`` under the default profile, scaled with it
    (HYPOTHESIS_PROFILE=thorough raises every budget)."""
    return max(1, round(n * settings.default.max_examples / DEFAULT_EXAMPLES))
SCALES = [1.0, -1.0, math.pi, 0.5, -2.5]


@dataclass(frozen=True)
class CircuitSpec:
    n_qubits: int
    n_inputs: int
    n_weights: int
    ops: tuple  # (name, wires, angles, unitary seed); an angle is (source, index, scale) or ("const", value)
    measurements: tuple  # ("expval", word) | ("probs", wires) | ("state",)
    batch: int
    seed: int

    def build(self) -> Circuit:
        c = Circuit(self.n_qubits, n_inputs=self.n_inputs)
        w = c.add_weights("w", (self.n_weights,))
        for name, wires, angles, seed in self.ops:
            if name == "QubitUnitary":
                c.unitary(random_unitary(2 ** len(wires), np.random.default_rng(seed)), wires)
                continue
            values = []
            for angle in angles:
                if angle[0] == "input":
                    values.append(angle[2] * c.inputs[angle[1]])
                elif angle[0] == "weight":
                    values.append(angle[2] * w[angle[1]])
                else:
                    values.append(angle[1])
            c.gate(name, wires, *values)
        for m in self.measurements:
            if m[0] == "expval":
                c.expval(m[1])
            elif m[0] == "probs":
                c.probs(m[1])
            else:
                c.state()
        return c

    def arguments(self) -> tuple[np.ndarray, np.ndarray]:
        """Random float64 inputs ``(B, n_inputs)`` and weights ``(n_weights,)``."""
        rng = np.random.default_rng(self.seed)
        inputs = rng.uniform(-math.pi, math.pi, (self.batch, self.n_inputs))
        return inputs, rng.uniform(-math.pi, math.pi, self.n_weights)


def _angle(draw, n_inputs: int, n_weights: int):
    sources = ["const"] + ["input"] * bool(n_inputs) + ["weight"] * bool(n_weights)
    source = draw(st.sampled_from(sources))
    if source == "const":
        return ("const", draw(st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False)))
    index = draw(st.integers(0, (n_inputs if source == "input" else n_weights) - 1))
    return (source, index, draw(st.sampled_from(SCALES)))


def _measurement(draw, n: int, paulis: str = "XYZ"):
    if draw(st.booleans()):
        wires = draw(st.permutations(range(n)))[: draw(st.integers(1, min(3, n)))]
        letters = draw(st.lists(st.sampled_from(paulis), min_size=len(wires), max_size=len(wires)))
        return ("expval", " ".join(f"{p}{w}" for p, w in zip(letters, wires)))
    return ("probs", tuple(draw(st.permutations(range(n)))[: draw(st.integers(1, n))]))


@st.composite
def circuit_specs(draw, max_qubits: int = 5, max_ops: int = 14, max_batch: int = 3,
                  native: bool = False) -> CircuitSpec:
    """Random circuits: any gate of GATES or a random QubitUnitary, angles from inputs, weights or
    constants with scales, and random Pauli-word / probability measurements (or the state alone).

    ``native``: only what the native kernel runs (QubitUnitary on one wire, Z words and probabilities)."""
    n = draw(st.integers(1, max_qubits))
    n_inputs, n_weights = draw(st.integers(0, 4)), draw(st.integers(0, 5))
    names = [g for g in GATE_NAMES if g == "QubitUnitary" or GATES[g].n_wires <= n]
    ops = []
    for _ in range(draw(st.integers(0, max_ops))):
        name = draw(st.sampled_from(names))
        k = draw(st.integers(1, 1 if native else min(3, n))) if name == "QubitUnitary" else GATES[name].n_wires
        wires = tuple(draw(st.permutations(range(n)))[:k])
        n_params = 0 if name == "QubitUnitary" else GATES[name].n_params
        angles = tuple(_angle(draw, n_inputs, n_weights) for _ in range(n_params))
        ops.append((name, wires, angles, draw(st.integers(0, 2**31))))
    if not native and draw(st.integers(0, 5)) == 0:
        measurements = (("state",),)
    else:
        measurements = tuple(_measurement(draw, n, "Z" if native else "XYZ") for _ in range(draw(st.integers(1, 4))))
    return CircuitSpec(n, n_inputs, n_weights, tuple(ops), measurements, draw(st.integers(1, max_batch)),
                       draw(st.integers(0, 2**31)))


ONE_QUBIT = [g for g in sorted(GATES) if GATES[g].n_wires == 1]
MULTI_QUBIT = [g for g in GATE_NAMES if g == "QubitUnitary" or GATES[g].n_wires > 1]


@st.composite
def layered_circuit_specs(draw, min_qubits: int = 6, max_qubits: int = 9, max_layers: int = 3,
                          native: bool = False) -> CircuitSpec:
    """Wide layered circuits: a random one-qubit gate on every wire per layer (long runs of touched
    wires, as hardware-efficient ansätze have), then a few random multi-qubit gates; Pauli-word and
    probability measurements. ``native``: as in :func:`circuit_specs`."""
    n = draw(st.integers(min_qubits, max_qubits))
    n_inputs, n_weights = draw(st.integers(1, n)), draw(st.integers(1, 6))
    ops = []
    for _ in range(draw(st.integers(1, max_layers))):
        for wire in range(n):
            name = draw(st.sampled_from(ONE_QUBIT))
            angles = tuple(_angle(draw, n_inputs, n_weights) for _ in range(GATES[name].n_params))
            ops.append((name, (wire,), angles, 0))
        for _ in range(draw(st.integers(0, 4))):
            name = draw(st.sampled_from(MULTI_QUBIT))
            k = draw(st.integers(1, 1 if native else 3)) if name == "QubitUnitary" else GATES[name].n_wires
            wires = tuple(draw(st.permutations(range(n)))[:k])
            n_params = 0 if name == "QubitUnitary" else GATES[name].n_params
            angles = tuple(_angle(draw, n_inputs, n_weights) for _ in range(n_params))
            ops.append((name, wires, angles, draw(st.integers(0, 2**31))))
    measurements = tuple(_measurement(draw, n, "Z" if native else "XYZ") for _ in range(draw(st.integers(1, 3))))
    return CircuitSpec(n, n_inputs, n_weights, tuple(ops), measurements, draw(st.integers(1, 3)),
                       draw(st.integers(0, 2**31)))
