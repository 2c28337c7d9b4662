"""Spiking building blocks: weighted-phase input encoding, the integrate-and-fire neuron with an
arctan surrogate gradient, and a wrapper that runs a stateless layer over the time axis.

Every module here is multi-step and stateless between calls: tensors are ``(T, B, ...)`` and the
membrane potential lives only inside one ``forward``, so nothing leaks from one batch to the next
and batches of any size follow each other (no ``reset_net`` to forget, unlike SpikingJelly).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hqnn.exceptions import ConfigError, ValueRangeError

__all__ = [
    "ATanSpike",
    "IFNeuron",
    "TimeDistributed",
    "WeightedPhaseEncoder",
    "atan_spike",
    "weighted_phase_encode",
]


def weighted_phase_encode(x: torch.Tensor, time_steps: int, bits: int = 8) -> torch.Tensor:
    """Weighted-phase spike encoding (Kim et al. 2018; SpikingJelly ``WeightedPhaseEncoder``).

    ``x`` is split into ``bits`` binary planes, most significant first: with ``w = 1/2``, for
    ``k = 0..bits-1``: ``s_k = [r >= w]``, ``r -= w s_k``, ``w /= 2``. Step ``t`` emits plane
    ``t mod bits``, so phases cycle when ``time_steps > bits``. For ``x = m / 2**bits`` plane ``k``
    is bit ``bits - 1 - k`` of the integer ``m``.

    Args:
        x: values in ``[0, 1 - 2**-bits]``, any shape ``S``.
        time_steps: T, the number of steps to emit.
        bits: K, the number of phases (8).

    Returns:
        ``(T, *S)`` tensor of 0/1 in ``x.dtype`` (not differentiable; it encodes the input).

    Raises:
        ConfigError: if ``time_steps`` or ``bits`` is not positive.
        ValueRangeError: if ``x`` leaves ``[0, 1 - 2**-bits]`` or holds NaN.

    Example:
        >>> weighted_phase_encode(torch.tensor([0.75]), 3).flatten().tolist()
        [1.0, 1.0, 0.0]
    """
    if time_steps < 1 or bits < 1:
        raise ConfigError(f"time_steps and bits must be positive; got {time_steps} and {bits}")
    top = 1.0 - 2.0**-bits
    if x.numel() and not torch.compiler.is_compiling():  # a host sync: eager runs check, compiled graphs cannot
        low, high = float(x.min()), float(x.max())  # torch's min/max propagate NaN
        if not (low >= 0.0 and high <= top):  # written so that NaN fails it too
            raise ValueRangeError(
                f"weighted-phase encoding needs inputs in [0, {top}] (1 - 2**-{bits}); got [{low:.6g}, {high:.6g}]"
            )
    remainder = x.detach()
    planes = []
    weight = 0.5
    for _ in range(bits):
        spike = (remainder >= weight).to(x.dtype)
        remainder = remainder - weight * spike
        planes.append(spike)
        weight /= 2
    index = torch.arange(time_steps, device=x.device) % bits
    return torch.stack(planes)[index]  # (T, *S)


class WeightedPhaseEncoder(nn.Module):
    """Module form of :func:`weighted_phase_encode`: ``(*S) -> (T, *S)``; holds no state.

    Args:
        time_steps: T.
        bits: K (8).
    """

    def __init__(self, time_steps: int, bits: int = 8):
        super().__init__()
        if time_steps < 1 or bits < 1:
            raise ConfigError(f"time_steps and bits must be positive; got {time_steps} and {bits}")
        self.time_steps = time_steps
        self.bits = bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return weighted_phase_encode(x, self.time_steps, self.bits)

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, bits={self.bits}"


class ATanSpike(torch.autograd.Function):
    """Heaviside spike ``[x >= 0]`` forward, arctan surrogate backward (Fang et al. 2021):

    ``dS/dx = (alpha / 2) / (1 + (pi / 2 * alpha * x)**2)``, the derivative of
    ``atan(pi / 2 * alpha * x) / pi + 1/2``.
    """

    generate_vmap_rule = True  # forward/setup_context style: torch.compile and torch.func trace it

    @staticmethod
    def forward(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, ctx.alpha = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        alpha = ctx.alpha
        surrogate = (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)
        return grad_output * surrogate, None


def atan_spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Apply :class:`ATanSpike`: spikes ``[x >= 0]`` with the arctan surrogate gradient."""
    return ATanSpike.apply(x, alpha)


def _atan_surrogate(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """``dS/dx`` of :class:`ATanSpike`: ``(alpha / 2) / (1 + (pi / 2 * alpha * x)**2)``."""
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


class _IFMultiStep(torch.autograd.Function):
    """:class:`IFNeuron`'s T steps as one autograd node, with backpropagation through time written out.

    Forward per step: ``H = V + X[t]``, ``S = [H >= thr]``, ``V = H (1 - S) + v_reset S``, no graph
    recorded. Backward, with ``g`` = dL/dS[t] and ``u`` = dL/dV[t] from the later steps (0 after the
    last), the chain rule of the reset gives ``dL/dH[t] = u (1 - S) + (g + u (v_reset - H)) sg(H - thr)``,
    sg the arctan surrogate, and ``dL/dX[t] = dL/dV[t-1] = dL/dH[t]``: eight small in-place passes
    per step where autograd through the step-by-step graph runs about twice as many ops and nodes.
    Work stays per time slice (in cache; whole-(T, ...) temporaries measured slower).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x_seq: torch.Tensor, v_threshold: float, v_reset: float, alpha: float):
        charges, spikes = [], []
        v = torch.full_like(x_seq[0], v_reset)
        for x in x_seq:
            h = v + x
            spike = (h >= v_threshold).to(x_seq.dtype)
            v = h * (1 - spike)
            if v_reset != 0.0:
                v = v + v_reset * spike
            charges.append(h)
            spikes.append(spike)
        return torch.stack(spikes), torch.stack(charges)  # (T, B, ...) each; the charges are for backward

    @staticmethod
    def setup_context(ctx, inputs, output):
        spikes, charges = output
        ctx.mark_non_differentiable(charges)
        ctx.save_for_backward(charges, spikes)
        ctx.constants = inputs[1:]

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor, _grad_charges):
        charge, spikes = ctx.saved_tensors
        v_threshold, v_reset, alpha = ctx.constants
        one = torch.ones((), dtype=charge.dtype, device=charge.device)
        scale_sq = (math.pi / 2 * alpha) ** 2
        grad_x = torch.empty_like(charge)
        later = None  # u = dL/dV[t]
        for t in range(charge.shape[0] - 1, -1, -1):
            offset = torch.sub(charge[t], v_threshold)
            surrogate = torch.addcmul(one, offset, offset, value=scale_sq).reciprocal_().mul_(alpha / 2)
            if later is None:
                torch.mul(grad_spikes[t], surrogate, out=grad_x[t])
            else:
                total = torch.addcmul(grad_spikes[t], later, charge[t], value=-1.0)  # g + u (v_reset - H)
                if v_reset != 0.0:
                    total.add_(later, alpha=v_reset)
                total.mul_(surrogate).addcmul_(later, 1 - spikes[t])
                grad_x[t] = total
            later = grad_x[t]
        return grad_x, None, None, None


class IFNeuron(nn.Module):
    """Multi-step integrate-and-fire neuron: no leak, hard reset (SpikingJelly ``IFNode``).

    For ``t = 0..T-1`` with ``V[-1] = v_reset``: charge ``H[t] = V[t-1] + X[t]``; fire
    ``S[t] = [H[t] >= v_threshold]`` (arctan surrogate, see :class:`ATanSpike`); hard reset
    ``V[t] = H[t] (1 - S[t]) + v_reset S[t]`` (the reset is not detached). ``V`` starts afresh in
    every call.

    Args:
        v_threshold: firing threshold (1.0).
        v_reset: reset potential (0.0).
        alpha: surrogate sharpness (2.0).

    Shapes: ``(T, B, ...) -> (T, B, ...)`` spikes in the input dtype.

    Example:
        >>> IFNeuron()(torch.full((3, 1), 0.6)).flatten().tolist()
        [0.0, 1.0, 0.0]
    """

    def __init__(self, v_threshold: float = 1.0, v_reset: float = 0.0, alpha: float = 2.0):
        super().__init__()
        self.v_threshold = v_threshold
        self.v_reset = v_reset
        self.alpha = alpha

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return _IFMultiStep.apply(x_seq, self.v_threshold, self.v_reset, self.alpha)[0]  # (T, B, ...)

    def extra_repr(self) -> str:
        return f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, alpha={self.alpha}"


class TimeDistributed(nn.Module):
    """Run a stateless layer on every time step at once by folding T into the batch:
    ``(T, B, ...) -> (T*B, ...) -> layer -> (T, B, ...)``. BatchNorm statistics are then taken over
    ``T*B`` samples, as in SpikingJelly's multi-step layers."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        steps, batch = x_seq.shape[:2]
        y = self.layer(x_seq.flatten(0, 1))  # (T*B, ...)
        return y.view(steps, batch, *y.shape[1:])
