"""Noise models: rules that insert channels after gates, applied to any circuit without editing it.

Example:
    >>> from hqnn.templates.recipes import rezk_qnn
    >>> model = NoiseModel().add("DepolarizingChannel", 0.01).add("AmplitudeDamping", 0.02, after="CNOT")
    >>> noisy = model.apply(rezk_qnn())          # a new Circuit; the original stays clean
    >>> noisy.has_noise, rezk_qnn().has_noise
    (True, False)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from hqnn.exceptions import ValueRangeError
from hqnn.sim.channels import channel_spec
from hqnn.sim.circuit import Circuit
from hqnn.sim.gates import gate_spec

__all__ = ["NoiseRule", "NoiseModel"]


@dataclass(frozen=True)
class NoiseRule:
    """Insert ``channel(*strengths)`` after matching gates, on each of the gate's matching wires.

    Attributes:
        channel: a built-in single-qubit channel name (see :mod:`hqnn.sim.channels`).
        strengths: constant strengths.
        after: gate names the rule follows (None: every gate).
        wires: wires the rule applies to (None: every wire).
    """

    channel: str
    strengths: tuple[float, ...]
    after: frozenset[str] | None = None
    wires: frozenset[int] | None = None

    def matches(self, gate: str, wire: int) -> bool:
        return (self.after is None or gate in self.after) and (self.wires is None or wire in self.wires)


@dataclass
class NoiseModel:
    """An ordered list of :class:`NoiseRule` plus readout errors by wire.

    ``apply(circuit)`` returns a new circuit with the channels inserted; the rules run in the order
    they were added. Channels are inserted after gates only (never after other channels).
    """

    rules: list[NoiseRule] = field(default_factory=list)
    readout: dict[int | None, tuple[float, float]] = field(default_factory=dict)

    def add(self, channel: str, *strengths: float, after=None, wires=None) -> NoiseModel:
        """Add a rule: ``channel(*strengths)`` after gates named in ``after`` (a name or list; None: all)
        on ``wires`` (None: all). Returns self for chaining.

        Raises:
            GateError: unknown channel or gate name, or a multi-wire channel.
            ValueRangeError: strengths outside the channel's range.
        """
        spec = channel_spec(channel)
        if spec.n_wires != 1 or len(strengths) != spec.n_params:
            raise ValueRangeError(f"a noise rule needs a single-qubit channel and its {spec.n_params} strength(s); "
                                  f"got {channel!r} with {len(strengths)}")
        probe = Circuit(1)
        probe.channel(spec.name, 0, *strengths)  # validates the strengths
        gates = [after] if isinstance(after, str) else after
        names = None if gates is None else frozenset(gate_spec(g).name for g in gates)
        wire_set = None if wires is None else frozenset([wires] if isinstance(wires, int) else wires)
        self.rules.append(NoiseRule(spec.name, tuple(float(s) for s in strengths), names, wire_set))
        return self

    def add_readout_error(self, p0to1: float, p1to0: float, wires=None) -> NoiseModel:
        """Flip measured bits 0 -> 1 with ``p0to1`` and 1 -> 0 with ``p1to0`` on ``wires`` (None: all)."""
        for w in [None] if wires is None else ([wires] if isinstance(wires, int) else wires):
            self.readout[w] = (float(p0to1), float(p1to0))
        return self

    def apply(self, circuit: Circuit) -> Circuit:
        """A copy of ``circuit`` with this model's channels and readout errors inserted."""
        noisy = copy.copy(circuit)
        noisy.ops, noisy.measurements = [], list(circuit.measurements)
        noisy.weight_shapes = dict(circuit.weight_shapes)
        for op in circuit.ops:
            noisy.ops.append(op)
            if op.kind != "gate":
                continue
            for rule in self.rules:
                for w in op.wires:
                    if rule.matches(op.name, w):
                        noisy.channel(rule.channel, w, *rule.strengths)
        for w in range(circuit.n_qubits):
            probs = self.readout.get(w, self.readout.get(None))
            if probs is not None:
                noisy.readout_error(probs[0], probs[1], w)
        return noisy
