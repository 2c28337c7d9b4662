"""Finite-shot estimates: sample measurement outcomes from exact distributions with a torch.Generator.

Each measurement is estimated from its own ``shots`` samples: an expval of a Pauli word is the mean
of ±1 outcomes (a binomial draw with P(+1) = (1 + ⟨P⟩)/2), a probs measurement the frequencies of a
multinomial draw. Estimates are unbiased with standard error sqrt((1 - ⟨P⟩²)/shots) and
sqrt(p(1-p)/shots). Readout errors are part of the exact distributions, so they carry over.
"""

from __future__ import annotations

import torch

from hqnn.exceptions import ShapeError

__all__ = ["sample_counts", "sample_measurements"]


def sample_counts(probs: torch.Tensor, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Outcome counts of ``shots`` draws from each row of ``probs (B, K)``: ``(B, K)`` float.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> sample_counts(torch.tensor([[0.5, 0.5]]), 100, g).sum().item()
        100.0
    """
    p = probs.detach().to(torch.float64).clamp_min(0).cpu()
    draws = torch.multinomial(p, int(shots), replacement=True, generator=generator)  # (B, shots)
    counts = torch.zeros_like(p).scatter_add_(1, draws, torch.ones_like(draws, dtype=p.dtype))
    return counts.to(device=probs.device, dtype=probs.dtype)


def sample_measurements(exact: torch.Tensor, measurements, shots: int,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Shot estimates of a circuit's outputs from their exact values.

    Args:
        exact: ``(B, n_outputs)`` exact expvals and probabilities.
        measurements: the circuit's measurements (expval and probs only).
        shots: samples per measurement (>= 1).
        generator: a CPU torch.Generator for reproducible draws.

    Returns:
        ``(B, n_outputs)`` estimates (not differentiable: use parameter-shift or finite-diff).

    Raises:
        ShapeError: shots < 1 or a state() measurement.
    """
    if int(shots) < 1:
        raise ShapeError(f"shots must be a positive integer; got {shots}")
    parts, col = [], 0
    for m in measurements:
        if m.kind == "expval":
            p_plus = ((1 + exact[:, col].detach()) / 2).clamp(0, 1).to(torch.float64).cpu()
            plus = torch.binomial(torch.full_like(p_plus, float(shots)), p_plus, generator=generator)
            parts.append((2 * plus / shots - 1).to(device=exact.device, dtype=exact.dtype)[:, None])
            col += 1
        elif m.kind == "probs":
            k = 2 ** len(m.wires)
            parts.append(sample_counts(exact[:, col : col + k], shots, generator) / shots)
            col += k
        else:
            raise ShapeError("shot estimates need expval or probs measurements; got state()")
    return torch.cat(parts, dim=1)
