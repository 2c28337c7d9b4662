"""OpenQASM 2 and 3 export of a circuit, with trained weights (and optionally one input) bound.

OpenQASM 3 uses ``stdgates.inc`` and defines rxx, ryy and rzz; unbound inputs and weights become
``input float[64]`` parameters (``x_i``, ``w_j`` for flat weight j). OpenQASM 2 uses the original
``qelib1.inc`` (the one Qiskit's ``qasm2`` importer ships) and defines the gates it lacks (sx, swap,
crx, cry, rxx, ryy, rzz); every angle must be bound. Qubit ``q[i]`` is hqnn wire i and ``c[i]`` its
measurement (:mod:`hqnn.interop.conventions`). Expectation values are not part of OpenQASM: the
program measures the wires the circuit's outputs read, and a comment lists the outputs.
"""

from __future__ import annotations

from hqnn.exceptions import ConfigError, UnsupportedError
from hqnn.interop._lowering import angle_value, bind, lower, measured_wires
from hqnn.interop.conventions import qasm_qubit
from hqnn.sim.circuit import CONST, INPUT, Angle, Circuit

__all__ = ["to_qasm", "format_float"]

_RXX = "gate rxx(theta) a, b { h a; h b; cx a, b; rz(theta) b; cx a, b; h a; h b; }"
_RYY = ("gate ryy(theta) a, b { rx(pi/2) a; rx(pi/2) b; cx a, b; rz(theta) b; cx a, b; "
        "rx(-pi/2) a; rx(-pi/2) b; }")
_RZZ = "gate rzz(theta) a, b { cx a, b; rz(theta) b; cx a, b; }"
# Gates missing from each standard include file, with definitions in terms of what it has.
_DEFINITIONS = {
    2: {
        "sx": "gate sx a { sdg a; h a; sdg a; }",
        "swap": "gate swap a, b { cx a, b; cx b, a; cx a, b; }",
        "crx": "gate crx(theta) a, b { u1(pi/2) b; cx a, b; u3(-theta/2, 0, 0) b; cx a, b; u3(theta/2, -pi/2, 0) b; }",
        "cry": "gate cry(theta) a, b { ry(theta/2) b; cx a, b; ry(-theta/2) b; cx a, b; }",
        "rxx": _RXX, "ryy": _RYY, "rzz": _RZZ,
    },
    3: {"rxx": _RXX, "ryy": _RYY, "rzz": _RZZ},
}
_RENAME = {2: {"p": "u1"}, 3: {}}
_HEADER = {2: 'OPENQASM 2.0;\ninclude "qelib1.inc";', 3: 'OPENQASM 3.0;\ninclude "stdgates.inc";'}


def format_float(value: float) -> str:
    """A float literal that round-trips exactly and that OpenQASM 2 accepts (a dot in the mantissa)."""
    text = repr(float(value))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("e" + exponent if exponent else "")


def _parameter_name(angle: Angle) -> str:
    return f"x_{angle.index}" if angle.source == INPUT else f"w_{angle.index}"


def _angle_text(angle: Angle, weights, inputs, version: int) -> str:
    value = angle_value(angle, weights, inputs)
    if value is not None:
        return format_float(value)
    if version == 2:
        what = "inputs" if angle.source == INPUT else "weights"
        raise UnsupportedError(f"OpenQASM 2 has no free parameters: pass {what} to bind every angle (or use version=3)")
    name = _parameter_name(angle)
    return name if angle.scale == 1.0 else f"{format_float(angle.scale)} * {name}"


def _output_comment(circuit: Circuit) -> str:
    names = []
    for m in circuit.measurements:
        if m.kind == "expval":
            names.append("<" + " ".join(f"{p}{qasm_qubit(w)}" for p, w in m.paulis) + ">")
        else:
            names.append(f"{m.kind}({', '.join(f'q[{qasm_qubit(w)}]' for w in m.wires)})")
    return ("// hqnn outputs (expectation values are not OpenQASM; estimate them from the measured bits): "
            + ", ".join(names))


def to_qasm(circuit: Circuit, weights=None, inputs=None, version: int = 3) -> str:
    """The circuit as an OpenQASM program.

    Args:
        circuit: the circuit.
        weights: ``(n_weights,)`` trained weights to bind (tensor, array or list).
        inputs: ``(n_inputs,)`` one sample's inputs to bind.
        version: 3 (unbound values become ``input float[64]`` parameters) or 2 (all must be bound).

    Returns:
        the program text.

    Raises:
        ConfigError: a version other than 2 or 3.
        ShapeError: weights or inputs of the wrong size.
        UnsupportedError: unbound values in OpenQASM 2, or a QubitUnitary on several wires.

    Example:
        >>> from hqnn.templates.recipes import hcqdl_code_qnode
        >>> print(to_qasm(hcqdl_code_qnode(), [0.3, 0.4, 0.5, 0.6], [0.1, 0.2]).splitlines()[6])
        rx(0.1) q[0];
    """
    if version not in (2, 3):
        raise ConfigError(f"OpenQASM version must be 2 or 3; got {version!r}")
    weights, inputs = bind(circuit, weights, inputs)
    natives = lower(circuit)
    gates = []
    for op in natives:
        name = _RENAME[version].get(op.name, op.name)
        angles = ", ".join(_angle_text(a, weights, inputs, version) for a in op.params)
        qubits = ", ".join(f"q[{q}]" for q in op.qubits)
        gates.append(f"{name}({angles}) {qubits};" if op.params else f"{name} {qubits};")
    used = {op.name for op in natives}
    lines = [_HEADER[version], f"// hqnn circuit: {circuit!r}; qubit q[i] is hqnn wire i",
             _output_comment(circuit)]
    lines += [text for name, text in _DEFINITIONS[version].items() if name in used]
    if version == 3:
        unbound = sorted({(a.source, a.index) for op in natives for a in op.params
                          if a.source != CONST and angle_value(a, weights, inputs) is None})
        lines += [f"input float[64] {_parameter_name(Angle(s, i))};" for s, i in unbound]
        lines += [f"qubit[{circuit.n_qubits}] q;", f"bit[{circuit.n_qubits}] c;"]
    else:
        lines += [f"qreg q[{circuit.n_qubits}];", f"creg c[{circuit.n_qubits}];"]
    lines += gates
    for w in measured_wires(circuit):
        q = qasm_qubit(w)
        lines.append(f"c[{q}] = measure q[{q}];" if version == 3 else f"measure q[{q}] -> c[{q}];")
    return "\n".join(lines) + "\n"
