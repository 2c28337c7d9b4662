"""The classical stand-in for a quantum layer, used by every hybrid model's classical twin."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ClassicalTwin"]


class ClassicalTwin(nn.Module):
    """``tanh(Linear(n_inputs, n_outputs)(x))``: same widths as the circuit it replaces and outputs in
    ``[-1, 1]`` like Pauli-Z expectations, so a hybrid and its twin differ only in that layer.

    Args:
        n_inputs: width of the circuit's input (angles).
        n_outputs: width of the circuit's output (expectation values).

    Example:
        >>> ClassicalTwin(4, 4)(torch.zeros(2, 4)).shape
        torch.Size([2, 4])
    """

    def __init__(self, n_inputs: int, n_outputs: int):
        super().__init__()
        self.linear = nn.Linear(n_inputs, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x))  # (..., n_outputs)
