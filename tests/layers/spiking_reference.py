"""The IF neuron step by step through autograd (ATanSpike per step, reset not detached): the
oracle for the fused PyTorch node and the native kernels."""

import torch

from hqnn.layers import atan_spike


def unrolled_if(x_seq, v_threshold=1.0, v_reset=0.0, alpha=2.0):
    """Spikes ``(T, ...)`` of the IF neuron on ``x_seq (T, ...)``, differentiable through autograd."""
    v = torch.full_like(x_seq[0], v_reset)
    spikes = []
    for x in x_seq:
        h = v + x
        spike = atan_spike(h - v_threshold, alpha)
        v = h * (1 - spike) + v_reset * spike
        spikes.append(spike)
    return torch.stack(spikes)
