"""Seed circuits with their published noise (``../shared/specs/seed_models.md``), run on density matrices."""

from __future__ import annotations

from hqnn.exceptions import ConfigError
from hqnn.sim.circuit import Circuit
from hqnn.templates.entanglers import Entangler
from hqnn.templates.recipes import add_readout
from hqnn.templates.reuploading import DataReuploading

__all__ = ["sqdr_reupload_noisy"]


def sqdr_reupload_noisy(n_qubits: int = 9, n_blocks: int = 2, p_bitflip: float = 0.02, p_depol: float = 0.03,
                        damping_index: int | str = 0, readout: str = "z") -> Circuit:
    """SQDR-CNN's noisy data re-uploading PQC as published (PennyLane ``default.mixed`` code).

    Per block b and wire i: Rot(x[3i], x[3i+1], x[3i+2]), Rot(W[b, i]), BitFlip(p_bitflip),
    DepolarizingChannel(p_depol), AmplitudeDamping(sigmoid(x[3i + r])). After every block but the
    last: a CZ chain, then BitFlip and Depolarizing on the last wire only (the source's leftover loop
    variable, kept on purpose). Measures ⟨Z_i⟩ on every wire (``readout`` as in
    :func:`~hqnn.templates.recipes.add_readout`; the published circuit: ``"z"``).

    Args:
        n_qubits, n_blocks: register size and number of re-uploading blocks (inputs: 3·n_qubits).
        p_bitflip, p_depol: channel probabilities.
        damping_index: r in {0, 1, 2}, or "random": r drawn uniformly per sample at every evaluation
            (the source's ``random.randint(0, 2)``), from the generator given to the simulator.

    Raises:
        ConfigError: a damping index other than 0, 1, 2 or "random".

    Example:
        >>> sqdr_reupload_noisy(n_qubits=3, n_blocks=1).n_outputs
        3
    """
    if damping_index not in (0, 1, 2, "random"):
        raise ConfigError(f"damping_index must be 0, 1, 2 or 'random'; got {damping_index!r}")
    c = Circuit(n_qubits, n_inputs=3 * n_qubits)
    w = c.add_weights("weights", DataReuploading.shape(n_blocks, n_qubits))
    x = c.inputs
    last = n_qubits - 1
    for b in range(n_blocks):
        for i in range(n_qubits):
            c.rot(x[3 * i], x[3 * i + 1], x[3 * i + 2], i)
            c.rot(w[b, i, 0], w[b, i, 1], w[b, i, 2], i)
            c.bit_flip(p_bitflip, i)
            c.depolarizing(p_depol, i)
            if damping_index == "random":
                c.amplitude_damping(x[3 * i].random_offset(3).sigmoid(), i)
            else:
                c.amplitude_damping(x[3 * i + int(damping_index)].sigmoid(), i)
        if b < n_blocks - 1:
            c.add(Entangler("chain", "CZ"))
            c.bit_flip(p_bitflip, last)
            c.depolarizing(p_depol, last)
    return add_readout(c, readout)
