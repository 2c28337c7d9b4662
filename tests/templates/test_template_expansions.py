"""Each template against a hand-written expansion (the expected gates, wires and angles) and its shape()."""

import math

import pytest

from hqnn.exceptions import ConfigError, GateError, ShapeError, WireError
from hqnn.sim import Angle, Circuit
from hqnn.templates import (
    PATTERNS,
    AngleEmbedding,
    BasicEntanglerLayers,
    DataReuploading,
    Entangler,
    StronglyEntanglingLayers,
    entangler_pairs,
)


def expansion(circuit: Circuit) -> list[tuple]:
    """The circuit's ops as (name, wires) pairs."""
    return [(op.name, op.wires) for op in circuit.ops]


def inp(i: int, scale: float = 1.0) -> Angle:
    return Angle("input", i, scale)


def wt(i: int, scale: float = 1.0) -> Angle:
    return Angle("weight", i, scale)


# -- AngleEmbedding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rotation,gate", [("X", "RX"), ("Y", "RY"), ("Z", "RZ"), ("y", "RY")])
def test_angle_embedding(rotation, gate):
    c = Circuit(3, n_inputs=3)
    c.add(AngleEmbedding(c.inputs, rotation=rotation, scale=math.pi))
    assert [(op.name, op.wires, op.params) for op in c.ops] == [
        (gate, (0,), (inp(0, math.pi),)), (gate, (1,), (inp(1, math.pi),)), (gate, (2,), (inp(2, math.pi),))]


def test_angle_embedding_default_is_rx_and_fewer_features_than_wires():
    c = Circuit(4, n_inputs=2)
    c.add(AngleEmbedding(c.inputs, wires=[3, 1, 0]))
    assert [(op.name, op.wires, op.params) for op in c.ops] == [("RX", (3,), (inp(0),)), ("RX", (1,), (inp(1),))]


def test_angle_embedding_errors():
    c = Circuit(2, n_inputs=3)
    with pytest.raises(ShapeError, match=r"at most 2 features for 2 wires; got 3"):
        c.add(AngleEmbedding(c.inputs))
    with pytest.raises(ConfigError, match=r"X, Y, Z; got 'W'"):
        c.add(AngleEmbedding(c.inputs[:2], rotation="W"))


# -- StronglyEntanglingLayers -----------------------------------------------------------------------
def _rot_layer(layer: int, wires, n_wires: int) -> list[tuple]:
    return [("Rot", (w,), tuple(wt(3 * (layer * n_wires + i) + k) for k in range(3))) for i, w in enumerate(wires)]


def test_strongly_entangling_default_ranges():
    """M = 3 wires, 3 layers: ranges 1, 2, 1, CNOT(i, i + r mod 3)."""
    c = Circuit(3)
    c.add(StronglyEntanglingLayers(c.add_weights("w", StronglyEntanglingLayers.shape(3, 3))))
    assert StronglyEntanglingLayers.shape(3, 3) == (3, 3, 3)
    expected = (_rot_layer(0, [0, 1, 2], 3) + [("CNOT", (0, 1), ()), ("CNOT", (1, 2), ()), ("CNOT", (2, 0), ())]
                + _rot_layer(1, [0, 1, 2], 3) + [("CNOT", (0, 2), ()), ("CNOT", (1, 0), ()), ("CNOT", (2, 1), ())]
                + _rot_layer(2, [0, 1, 2], 3) + [("CNOT", (0, 1), ()), ("CNOT", (1, 2), ()), ("CNOT", (2, 0), ())])
    assert [(op.name, op.wires, op.params) for op in c.ops] == expected


def test_strongly_entangling_custom_ranges_wires_and_cz():
    c = Circuit(5)
    w = c.add_weights("w", (2, 4, 3))
    c.add(StronglyEntanglingLayers(w, wires=[4, 2, 0, 1], ranges=[3, 2], imprimitive="CZ"))
    expected = (_rot_layer(0, [4, 2, 0, 1], 4) + [("CZ", (4, 1), ()), ("CZ", (2, 4), ()), ("CZ", (0, 2), ()),
                                                   ("CZ", (1, 0), ())]
                + _rot_layer(1, [4, 2, 0, 1], 4) + [("CZ", (4, 0), ()), ("CZ", (2, 1), ()), ("CZ", (0, 4), ()),
                                                     ("CZ", (1, 2), ())])
    assert [(op.name, op.wires, op.params) for op in c.ops] == expected


def test_strongly_entangling_one_and_two_wires():
    c = Circuit(1)
    c.add(StronglyEntanglingLayers(c.add_weights("w", (2, 1, 3))))
    assert expansion(c) == [("Rot", (0,)), ("Rot", (0,))]
    c = Circuit(2)
    c.add(StronglyEntanglingLayers(c.add_weights("w", (2, 2, 3))))
    # On two wires every range is 1: CNOT(0, 1) then CNOT(1, 0), as in PennyLane.
    assert expansion(c) == [("Rot", (0,)), ("Rot", (1,)), ("CNOT", (0, 1)), ("CNOT", (1, 0)),
                            ("Rot", (0,)), ("Rot", (1,)), ("CNOT", (0, 1)), ("CNOT", (1, 0))]


def test_strongly_entangling_errors():
    c = Circuit(4)
    with pytest.raises(ShapeError, match=r"\(2, 4, 3\).*got \(2, 5, 3\)"):
        c.add(StronglyEntanglingLayers(c.add_weights("a", (2, 5, 3))))
    with pytest.raises(ShapeError, match=r"\(0, 4, 3\).*got \(12,\)"):
        c.add(StronglyEntanglingLayers(c.add_weights("b", (12,))))
    w = c.add_weights("c", (2, 4, 3))
    with pytest.raises(ConfigError, match=r"none a multiple of 4; got \[1, 4\]"):
        c.add(StronglyEntanglingLayers(w, ranges=[1, 4]))
    with pytest.raises(ConfigError, match=r"2 integers.*got \[1\]"):
        c.add(StronglyEntanglingLayers(w, ranges=[1]))
    with pytest.raises(ConfigError, match=r"fixed two-qubit gate.*'CRX'"):
        c.add(StronglyEntanglingLayers(w, imprimitive="CRX"))
    with pytest.raises(GateError, match=r"unknown gate 'FOO'"):
        c.add(StronglyEntanglingLayers(w, imprimitive="FOO"))


# -- BasicEntanglerLayers ---------------------------------------------------------------------------
@pytest.mark.parametrize("n,cnots", [
    (1, []),
    (2, [(0, 1)]),
    (3, [(0, 1), (1, 2), (2, 0)]),
    (4, [(0, 1), (1, 2), (2, 3), (3, 0)]),
])
def test_basic_entangler_layers(n, cnots):
    c = Circuit(n)
    c.add(BasicEntanglerLayers(c.add_weights("w", BasicEntanglerLayers.shape(2, n)), rotation="RY"))
    assert BasicEntanglerLayers.shape(2, n) == (2, n)
    expected = [op for layer in range(2)
                for op in [("RY", (i,), (wt(layer * n + i),)) for i in range(n)] + [("CNOT", p, ()) for p in cnots]]
    assert [(op.name, op.wires, op.params) for op in c.ops] == expected


def test_basic_entangler_default_rotation_and_errors():
    c = Circuit(3)
    c.add(BasicEntanglerLayers(c.add_weights("w", (1, 2)), wires=[2, 0]))
    assert expansion(c) == [("RX", (2,)), ("RX", (0,)), ("CNOT", (2, 0))]
    with pytest.raises(ShapeError, match=r"\(1, 3\).*got \(1, 4\)"):
        c.add(BasicEntanglerLayers(c.add_weights("bad", (1, 4))))
    with pytest.raises(ConfigError, match=r"one-angle single-qubit gate.*'Rot'"):
        c.add(BasicEntanglerLayers(c.add_weights("ok", (1, 3)), rotation="Rot"))


# -- Entangler --------------------------------------------------------------------------------------
PAIRS = {
    "chain": [(0, 1), (1, 2), (2, 3)],
    "ring": [(0, 1), (1, 2), (2, 3), (3, 0)],
    "star": [(0, 1), (0, 2), (0, 3)],
    "all_to_all": [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)],
}


def test_patterns_listed():
    assert set(PATTERNS) == set(PAIRS)


@pytest.mark.parametrize("pattern", sorted(PAIRS))
@pytest.mark.parametrize("gate", ["CNOT", "CZ", "CY", "SWAP", "cx"])
def test_entangler_fixed_gates(pattern, gate):
    c = Circuit(4).add(Entangler(pattern, gate))
    name = "CNOT" if gate == "cx" else gate
    assert expansion(c) == [(name, p) for p in PAIRS[pattern]]
    assert Entangler.shape(pattern, 4) == (len(PAIRS[pattern]),)


@pytest.mark.parametrize("pattern", sorted(PAIRS))
@pytest.mark.parametrize("gate", ["CRX", "CRY", "CRZ", "IsingXX", "IsingYY", "IsingZZ"])
def test_entangler_parametrised_gates(pattern, gate):
    c = Circuit(4)
    w = c.add_weights("w", Entangler.shape(pattern, 4))
    c.add(Entangler(pattern, gate, weights=w))
    assert [(op.name, op.wires, op.params) for op in c.ops] == [
        (gate, p, (wt(k),)) for k, p in enumerate(PAIRS[pattern])]


@pytest.mark.parametrize("pattern,wires,pairs", [
    ("chain", [3, 1, 2], [(3, 1), (1, 2)]),
    ("ring", [3, 1, 2], [(3, 1), (1, 2), (2, 3)]),
    ("ring", [2, 0], [(2, 0)]),  # two wires: one gate, as PennyLane's ring
    ("ring", [1], []),
    ("chain", [1], []),
    ("star", [2, 0, 3], [(2, 0), (2, 3)]),
    ("all_to_all", [3, 0, 1], [(3, 0), (3, 1), (0, 1)]),
])
def test_entangler_pairs_on_given_wires(pattern, wires, pairs):
    assert entangler_pairs(pattern, wires) == pairs
    assert expansion(Circuit(4).add(Entangler(pattern, "CZ", wires=wires))) == [("CZ", p) for p in pairs]


def test_entangler_errors():
    c = Circuit(4)
    with pytest.raises(ConfigError, match=r"unknown entangling pattern 'spiral'; valid: chain, ring"):
        c.add(Entangler("spiral"))
    with pytest.raises(ConfigError, match=r"CRX entangler needs weights of shape \(4,\)"):
        c.add(Entangler("ring", "CRX"))
    with pytest.raises(ShapeError, match=r"\(3,\) for chain on 4 wires; got \(4,\)"):
        c.add(Entangler("chain", "CRZ", weights=c.add_weights("w", (4,))))
    with pytest.raises(GateError, match=r"CRot takes 3 angle\(s\); got 1"):
        c.add(Entangler("chain", "CRot", weights=c.add_weights("v", (3,))))


# -- DataReuploading --------------------------------------------------------------------------------
@pytest.mark.parametrize("entangle_last", [False, True])
def test_data_reuploading(entangle_last):
    c = Circuit(2, n_inputs=6)
    w = c.add_weights("w", DataReuploading.shape(2, 2))
    assert DataReuploading.shape(2, 2) == (2, 2, 3)
    c.add(DataReuploading(c.inputs, w, entangle_last=entangle_last))
    blocks = [[("Rot", (0,), (inp(0), inp(1), inp(2))), ("Rot", (0,), (wt(6 * b), wt(6 * b + 1), wt(6 * b + 2))),
               ("Rot", (1,), (inp(3), inp(4), inp(5))), ("Rot", (1,), (wt(6 * b + 3), wt(6 * b + 4), wt(6 * b + 5)))]
              for b in range(2)]
    expected = blocks[0] + [("CZ", (0, 1), ())] + blocks[1] + ([("CZ", (0, 1), ())] if entangle_last else [])
    assert [(op.name, op.wires, op.params) for op in c.ops] == expected


def test_data_reuploading_pattern_and_gate():
    c = Circuit(3, n_inputs=9)
    c.add(DataReuploading(c.inputs, c.add_weights("w", (1, 3, 3)), pattern="ring", gate="CNOT", entangle_last=True))
    assert expansion(c)[-3:] == [("CNOT", (0, 1)), ("CNOT", (1, 2)), ("CNOT", (2, 0))]
    assert len(c.ops) == 6 + 3


def test_data_reuploading_errors():
    c = Circuit(3, n_inputs=8)
    with pytest.raises(ShapeError, match=r"\(9 for 3 wires\); got 8"):
        c.add(DataReuploading(c.inputs, c.add_weights("w", (2, 3, 3))))
    c = Circuit(3, n_inputs=9)
    with pytest.raises(ShapeError, match=r"\(2, 3, 3\) for 3 wires; got \(2, 3, 2\)"):
        c.add(DataReuploading(c.inputs, c.add_weights("w", (2, 3, 2))))


def test_templates_check_wires_through_the_circuit():
    c = Circuit(2)
    with pytest.raises(WireError, match=r"wire 2 is out of range.*0\.\.1"):
        c.add(Entangler("chain", "CNOT", wires=[0, 1, 2]))
    with pytest.raises(WireError, match=r"needs at least 1 wire"):
        c.add(StronglyEntanglingLayers(c.add_weights("w", (1, 0, 3)), wires=[]))
