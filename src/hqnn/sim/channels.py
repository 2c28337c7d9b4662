"""Noise channels as superoperators, PennyLane's conventions, batched over their strengths.

A channel E(ρ) = Σ_k K_k ρ K_k† is stored as its superoperator S = Σ_k K_k ⊗ conj(K_k), a
``(d², d²)`` matrix acting on ρ's (row, column) index pairs: ``ρ'[i, j] = Σ S[(i, j), (k, l)] ρ[k, l]``.
Every built-in single-qubit channel has a closed form in its strengths (no square roots of
probabilities), so gradients are finite at p = 0; strengths are real tensors of any common shape
``(...)`` and give ``(..., 4, 4)``.

Built-in channels (PennyLane 0.45 definitions):

* BitFlip(p): (1-p) ρ + p XρX;  PhaseFlip(p): (1-p) ρ + p ZρZ.
* DepolarizingChannel(p): (1-p) ρ + p/3 (XρX + YρY + ZρZ).
* AmplitudeDamping(γ): K0 = [[1, 0], [0, √(1-γ)]], K1 = [[0, √γ], [0, 0]].
* PhaseDamping(γ): K0 = [[1, 0], [0, √(1-γ)]], K1 = [[0, 0], [0, √γ]].
* GeneralizedAmplitudeDamping(γ, p): √(1-p)·AD(γ) Kraus and √p·[[√(1-γ), 0], [0, 1]], √p·[[0, 0], [√γ, 0]]
  (p is the excited population the qubit relaxes to).
* ThermalRelaxationError(pe, T1, T2, tg): populations relax to pe with p_reset = 1 - exp(-tg/T1),
  coherences decay by exp(-tg/T2) (the map of PennyLane's Kraus sets, both T2 ≤ T1 and T2 > T1).
* QubitChannel: user Kraus operators on any number of wires (checked: Σ K†K = I).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from hqnn.exceptions import GateError, ShapeError, ValueRangeError

__all__ = ["ChannelSpec", "CHANNELS", "channel_spec", "superop_from_kraus", "kraus_from_superop",
           "check_kraus", "check_strengths"]

_PAULI = {
    "I": [[1, 0], [0, 1]],
    "X": [[0, 1], [1, 0]],
    "Y": [[0, -1j], [1j, 0]],
    "Z": [[1, 0], [0, -1]],
}


def superop_from_kraus(kraus: torch.Tensor) -> torch.Tensor:
    """``Σ_k K_k ⊗ conj(K_k)``: ``(..., m, d, d) -> (..., d², d²)``."""
    d = kraus.shape[-1]
    # broadcast product, not einsum: einsum lowers to tiny GEMMs that are slow under thread contention
    s = (kraus[..., :, None, :, None] * kraus.conj()[..., None, :, None, :]).sum(dim=-5)  # (..., d, d, d, d)
    return s.reshape(*kraus.shape[:-3], d * d, d * d)


def kraus_from_superop(superop: torch.Tensor, atol: float = 1e-12) -> torch.Tensor:
    """A Kraus set of a superoperator from its Choi matrix: ``(..., d², d²) -> (..., d², d, d)``.

    Eigenvectors of the Choi matrix C[(i, k), (j, l)] = S[(i, j), (k, l)] scaled by √eigenvalue;
    branches with a (numerically) zero eigenvalue come out as zero matrices.
    """
    d = int(round(superop.shape[-1] ** 0.5))
    lead = superop.shape[:-2]
    choi = superop.reshape(*lead, d, d, d, d).transpose(-3, -2).reshape(*lead, d * d, d * d)
    values, vectors = torch.linalg.eigh((choi + choi.conj().transpose(-1, -2)) / 2)
    scale = values.clamp_min(0).sqrt().where(values > atol, torch.zeros_like(values))
    kraus = (vectors * scale.to(vectors.dtype)[..., None, :]).transpose(-1, -2)  # (..., m, d*d)
    return kraus.reshape(*lead, d * d, d, d)


def _mixture(*paulis: str) -> Callable:
    """A mixed-unitary channel ρ -> Σ_k w_k(p) P_k ρ P_k with w = (1 - p, p/(m-1), ...)."""
    table = torch.tensor([_PAULI[p] for p in paulis], dtype=torch.complex128)
    fixed = superop_from_kraus(table[:, None])  # (m, 4, 4): one unitary each

    def superop(p: torch.Tensor) -> torch.Tensor:
        rest = p / (len(paulis) - 1)
        weights = torch.stack([1 - p] + [rest] * (len(paulis) - 1), dim=-1)  # (..., m)
        s = fixed.to(device=p.device, dtype=torch.complex128 if p.dtype == torch.float64 else torch.complex64)
        return torch.einsum("...m,mij->...ij", weights.to(s.dtype), s)

    return superop


def _populations(a00, a01, a10, a11, coherence) -> torch.Tensor:
    """The superoperator of a phase-covariant qubit channel: ρ00' = a00 ρ00 + a01 ρ11,
    ρ11' = a10 ρ00 + a11 ρ11, ρ01' = coherence · ρ01 (all real, broadcast to a common shape)."""
    a00, a01, a10, a11, coherence = torch.broadcast_tensors(a00, a01, a10, a11, coherence)
    z = torch.zeros_like(a00)
    rows = [[a00, z, z, a01], [z, coherence, z, z], [z, z, coherence, z], [a10, z, z, a11]]
    real = torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)
    return torch.complex(real, torch.zeros_like(real))


def _amplitude_damping(gamma):
    one = torch.ones_like(gamma)
    return _populations(one, gamma, torch.zeros_like(gamma), 1 - gamma, torch.sqrt(1 - gamma))


def _phase_damping(gamma):
    one, zero = torch.ones_like(gamma), torch.zeros_like(gamma)
    return _populations(one, zero, zero, one, torch.sqrt(1 - gamma))


def _generalized_amplitude_damping(gamma, p):
    return _populations((1 - p) + p * (1 - gamma), (1 - p) * gamma, p * gamma, (1 - p) * (1 - gamma) + p,
                        torch.sqrt(1 - gamma))


def _thermal_relaxation(pe, t1, t2, tg):
    p_reset = 1 - torch.exp(-tg / t1)
    return _populations(1 - pe * p_reset, (1 - pe) * p_reset, pe * p_reset, 1 - (1 - pe) * p_reset,
                        torch.exp(-tg / t2))


@dataclass(frozen=True)
class ChannelSpec:
    """A built-in channel: name, wires, strengths and ``superop(*strengths) -> (..., d², d²)``.

    ``ranges`` gives each strength's valid closed interval (None: unbounded), checked for constants.
    """

    name: str
    n_wires: int
    n_params: int
    superop: Callable[..., torch.Tensor]
    ranges: tuple[tuple[float | None, float | None], ...] = ()


_UNIT = (0.0, 1.0)
CHANNELS: dict[str, ChannelSpec] = {
    "BitFlip": ChannelSpec("BitFlip", 1, 1, _mixture("I", "X"), (_UNIT,)),
    "PhaseFlip": ChannelSpec("PhaseFlip", 1, 1, _mixture("I", "Z"), (_UNIT,)),
    "DepolarizingChannel": ChannelSpec("DepolarizingChannel", 1, 1, _mixture("I", "X", "Y", "Z"), (_UNIT,)),
    "AmplitudeDamping": ChannelSpec("AmplitudeDamping", 1, 1, _amplitude_damping, (_UNIT,)),
    "PhaseDamping": ChannelSpec("PhaseDamping", 1, 1, _phase_damping, (_UNIT,)),
    "GeneralizedAmplitudeDamping": ChannelSpec("GeneralizedAmplitudeDamping", 1, 2, _generalized_amplitude_damping,
                                               (_UNIT, _UNIT)),
    "ThermalRelaxationError": ChannelSpec("ThermalRelaxationError", 1, 4, _thermal_relaxation,
                                          (_UNIT, (0.0, None), (0.0, None), (0.0, None))),
}
_ALIASES = {name.lower(): name for name in CHANNELS}
_ALIASES.update({"depolarizing": "DepolarizingChannel", "thermal_relaxation": "ThermalRelaxationError",
                 "generalized_amplitude_damping": "GeneralizedAmplitudeDamping", "bit_flip": "BitFlip",
                 "phase_flip": "PhaseFlip", "amplitude_damping": "AmplitudeDamping", "phase_damping": "PhaseDamping"})


def channel_spec(name: str) -> ChannelSpec:
    """Look up a built-in channel by its PennyLane name or a snake_case alias.

    Raises:
        GateError: an unknown name, listing the valid ones.
    """
    spec = CHANNELS.get(name) or CHANNELS.get(_ALIASES.get(name.lower(), ""))
    if spec is None:
        raise GateError(f"unknown channel {name!r}; valid channels: {', '.join(sorted(CHANNELS))}, QubitChannel")
    return spec


def check_strengths(spec: ChannelSpec, values: dict[int, float]) -> None:
    """Check constant strengths (position -> value) against the channel's ranges.

    Raises:
        ValueRangeError: a strength outside its range, or T2 > 2·T1 for thermal relaxation.
    """
    for pos, value in values.items():
        low, high = spec.ranges[pos]
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueRangeError(f"{spec.name} strength {pos} must lie in [{low}, {high}]; got {value}")
    if spec.name == "ThermalRelaxationError":
        if values.get(1) == 0.0 or values.get(2) == 0.0:
            raise ValueRangeError(f"{spec.name}: T1 and T2 must be > 0; got {values}")
        if 1 in values and 2 in values and values[2] > 2 * values[1]:
            raise ValueRangeError(f"{spec.name}: T2 must be <= 2*T1; got T1={values[1]}, T2={values[2]}")


def check_kraus(matrices, n_wires: int, atol: float = 1e-8) -> torch.Tensor:
    """Validate user Kraus operators: ``(m, d, d)`` complex128 with Σ K†K = I within ``atol``.

    Raises:
        ShapeError: not a stack of ``(2**n_wires, 2**n_wires)`` matrices.
        ValueRangeError: the set is not trace preserving.
    """
    kraus = torch.stack([torch.as_tensor(k, dtype=torch.complex128) for k in matrices]) \
        if isinstance(matrices, (list, tuple)) else torch.as_tensor(matrices, dtype=torch.complex128)
    d = 2**n_wires
    if kraus.dim() != 3 or kraus.shape[1:] != (d, d) or kraus.shape[0] < 1:
        raise ShapeError(f"Kraus operators on {n_wires} wire(s) must be a (m, {d}, {d}) stack; "
                         f"got {tuple(kraus.shape)}")
    total = torch.einsum("mki,mkj->ij", kraus.conj(), kraus)
    if not torch.allclose(total, torch.eye(d, dtype=kraus.dtype), atol=atol):
        raise ValueRangeError(f"Kraus operators must satisfy sum K^dagger K = I within {atol}; "
                              f"the largest deviation is {(total - torch.eye(d)).abs().max():.2e}")
    return kraus
