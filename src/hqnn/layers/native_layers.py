"""Native CPU kernels (``native_layers.c``) for the spiking CNN's layers: the multi-step IF neuron
and 3x3 convolutions with few channels.

At SQDR-CNN's sizes (batch 16 x 10 time steps, 1-8 channels) both layers are bound by per-call
overhead, not arithmetic. :class:`IFNeuron` runs ~10 small PyTorch ops per time step forward and
backward; the kernel does the T steps of a block of neurons in one pass (fwd+bwd at (10, 16, 2, 28,
28): 1.46 ms -> 0.06 ms, 2 threads). oneDNN's 3x3 convolution with 1-4 input channels spends most of
its backward on the weight gradient (1 -> 2 channels on 160 maps of 28x28: 2.3 ms inside the model);
the kernel runs each tap as one multiply-add over a contiguous span of zero-padded, stacked planes
(see native_layers.c; 0.7 ms for forward, input and weight gradient at 1 thread).

:func:`use_native_layers` swaps, in place, a model's :class:`IFNeuron` modules for
:class:`NativeIFNeuron` (or, with the ``TimeDistributed(MaxPool2d(2, 2))`` that follows three of
them in SQDR-CNN, the pair for :class:`NativeIFPool`, which pools inside the kernel and keeps only
the charges for backward: the whole model's forward+backward 9.5 -> 8.6 ms at 1 thread) and its
qualifying ``nn.Conv2d`` (3x3, stride 1, zero padding 1, no groups or dilation, at most
:data:`MAX_CONV_CHANNELS` input channels) for :class:`NativeConv3x3`, keeping the
parameters, state dict and hooks. Each falls back to the PyTorch computation when the kernel cannot
take the call: no C compiler (warned once, as for the circuit kernel), a CUDA tensor, a dtype other
than float32/64, channels-last input, or a traced call (``torch.compile``, ``torch.func``). Spikes
are bitwise those of :class:`IFNeuron`; gradients and convolutions agree within float rounding
(``tests/layers/test_native_layers.py``). The kernels are built with the circuit kernel's cache and
its checks (:func:`hqnn.sim.native.build_library`, docs/security.md); ``HQNN_NATIVE=0`` turns them off.
"""

from __future__ import annotations

import ctypes
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from hqnn.exceptions import ResourceError
from hqnn.layers.spiking import IFNeuron, TimeDistributed
from hqnn.sim.native import build_library, cached_library, eager_tensors

__all__ = ["MAX_CONV_CHANNELS", "NativeConv3x3", "NativeIFNeuron", "NativeIFPool", "layers_library",
           "use_native_layers"]

MAX_CONV_CHANNELS = 4
"""Most input channels a convolution may have to be swapped. SQDR-CNN's forward+backward (batch 16,
T = 10, 1 thread, AMD EPYC, the other core busy, median of 8 alternating rounds, IF neurons native
in every case): 9.2 ms with its 1 -> 2 channel conv on the kernel, 7.8 ms with the 2 -> 4 one too,
7.2-7.6 ms with the 4 -> 8 one as well (all of PyTorch's layers: 13.9 ms). In isolation the kernel
is 23x faster than oneDNN at 1 -> 2 channels on 28x28 maps, 2.9x at 2 -> 4 on 14x14, even at 4 -> 8
on 7x7 and 2.8x slower at 8 -> 16 on 7x7 (forward, input and weight gradient of 160 maps)."""

_SOURCE = Path(__file__).with_name("native_layers.c")
_STATE: dict = {}  # dtype -> loaded library, or the reason it is not available


def _load(variant: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(build_library(_SOURCE, "hqnn_layers", variant)))
    ptr, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    real: type[ctypes.c_float] | type[ctypes.c_double] = ctypes.c_float if variant == "single" else ctypes.c_double
    lib.hq_if_forward.argtypes = [ptr, i64, i64, real, real, ptr, ptr, i32]
    lib.hq_if_backward.argtypes = [ptr, ptr, ptr, i64, i64, real, real, real, real, ptr, i32]
    lib.hq_if_pool_forward.argtypes = [ptr, i64, i64, i64, i64, real, real, ptr, ptr, i32]
    lib.hq_if_pool_backward.argtypes = [ptr, ptr, i64, i64, i64, i64, real, real, real, real, ptr, i32]
    lib.hq_conv3x3_forward.argtypes = [ptr, ptr, i64, i64, i64, i64, i64, ptr, i32]
    lib.hq_conv3x3_weight_grad.argtypes = [ptr, ptr, i64, i64, i64, i64, i64, ptr, i32]
    lib.hq_if_forward.restype = lib.hq_if_backward.restype = None
    lib.hq_if_pool_forward.restype = lib.hq_if_pool_backward.restype = i32
    lib.hq_conv3x3_forward.restype = lib.hq_conv3x3_weight_grad.restype = i32
    return lib


def layers_library(dtype: torch.dtype) -> ctypes.CDLL | None:
    """The loaded kernels for ``float32`` or ``float64``; None for other dtypes, with ``HQNN_NATIVE=0``,
    or (with a warning once) when they cannot be built."""
    return cached_library(_STATE, dtype, _load,
                          "hqnn: the native layer kernels could not be built ({reason}); the spiking layers run "
                          "in PyTorch instead (slower)")


def _usable(*tensors: torch.Tensor) -> ctypes.CDLL | None:
    """The library for a direct kernel call on ``tensors`` (eager, CPU, one float dtype), else None."""
    first = tensors[0]
    if not eager_tensors(*tensors) or any(t.device.type != "cpu" or t.dtype != first.dtype for t in tensors):
        return None
    return layers_library(first.dtype)


def _library(dtype: torch.dtype) -> ctypes.CDLL:
    """The loaded library, which the module checked before it chose the kernel."""
    lib = layers_library(dtype)
    if lib is None:
        raise ResourceError(f"the native layer kernels are not available for {dtype}: {_STATE.get(dtype)}")
    return lib


def _threads() -> int:
    return torch.get_num_threads()


class _IFKernel(torch.autograd.Function):
    """:class:`IFNeuron`'s forward and backward through time in ``hq_if_forward`` / ``hq_if_backward``."""

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, v_threshold: float, v_reset: float, alpha: float) -> torch.Tensor:
        lib = _library(x_seq.dtype)
        x = x_seq.contiguous()
        steps, per_step = x.shape[0], x[0].numel()
        spikes, charges = torch.empty_like(x), torch.empty_like(x)
        lib.hq_if_forward(x.data_ptr(), steps, per_step, v_threshold, v_reset, spikes.data_ptr(),
                          charges.data_ptr(), _threads())
        ctx.save_for_backward(charges, spikes)
        ctx.constants = (v_threshold, v_reset, alpha)
        return spikes  # (T, B, ...)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes: torch.Tensor):
        charges, spikes = ctx.saved_tensors
        v_threshold, v_reset, alpha = ctx.constants
        lib = _library(charges.dtype)
        grad = grad_spikes.to(charges.dtype).contiguous()
        grad_x = torch.empty_like(charges)
        lib.hq_if_backward(charges.data_ptr(), spikes.data_ptr(), grad.data_ptr(), charges.shape[0],
                           charges[0].numel(), v_threshold, v_reset, alpha, (math.pi / 2 * alpha) ** 2,
                           grad_x.data_ptr(), _threads())
        return grad_x, None, None, None


class NativeIFNeuron(IFNeuron):
    """:class:`IFNeuron` on the native kernel where it can run (see the module docstring).

    Example:
        >>> NativeIFNeuron()(torch.full((3, 1), 0.6)).flatten().tolist()
        [0.0, 1.0, 0.0]
    """

    @classmethod
    def from_neuron(cls, neuron: IFNeuron) -> NativeIFNeuron:
        """A ``cls`` with ``neuron``'s settings and hooks."""
        new = cls.__new__(cls)
        new.__dict__.update(neuron.__dict__)
        return new

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() >= 2 and x_seq.numel() and _usable(x_seq) is not None:
            return _IFKernel.apply(x_seq, self.v_threshold, self.v_reset, self.alpha)
        return super().forward(x_seq)


def _check(status: int) -> None:
    if status:
        raise ResourceError("a native layer kernel could not allocate its work buffer")


class _IFPoolKernel(torch.autograd.Function):
    """:class:`IFNeuron` then 2x2 max pooling of every time step, in ``hq_if_pool_forward`` /
    ``hq_if_pool_backward``: ``(T, B, C, H, W) -> (T, B, C, H // 2, W // 2)``. Only the charges are
    saved; the spikes and the pooling's choice are recomputed from them in the backward pass."""

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, v_threshold: float, v_reset: float, alpha: float) -> torch.Tensor:
        lib = _library(x_seq.dtype)
        x = x_seq.contiguous()
        steps, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        planes = x[0].numel() // (h * w)
        pooled = x.new_empty(*x.shape[:-2], h // 2, w // 2)
        charges = torch.empty_like(x)
        _check(lib.hq_if_pool_forward(x.data_ptr(), steps, planes, h, w, v_threshold, v_reset, pooled.data_ptr(),
                                      charges.data_ptr(), _threads()))
        ctx.save_for_backward(charges)
        ctx.constants = (v_threshold, v_reset, alpha)
        return pooled

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_pooled: torch.Tensor):
        (charges,) = ctx.saved_tensors
        v_threshold, v_reset, alpha = ctx.constants
        lib = _library(charges.dtype)
        grad = grad_pooled.to(charges.dtype).contiguous()
        steps, h, w = charges.shape[0], charges.shape[-2], charges.shape[-1]
        grad_x = torch.empty_like(charges)
        _check(lib.hq_if_pool_backward(charges.data_ptr(), grad.data_ptr(), steps, charges[0].numel() // (h * w), h, w,
                                       v_threshold, v_reset, alpha, (math.pi / 2 * alpha) ** 2, grad_x.data_ptr(),
                                       _threads()))
        return grad_x, None, None, None


class NativeIFPool(NativeIFNeuron):
    """:class:`IFNeuron` followed by ``MaxPool2d(2, 2)`` on every time step, fused on the native kernel
    where it can run: ``(T, B, C, H, W) -> (T, B, C, H // 2, W // 2)``; the same outputs (bitwise) and
    gradients as the two layers. :func:`use_native_layers` puts it in place of such a pair.

    Example:
        >>> NativeIFPool()(torch.full((3, 1, 1, 2, 2), 0.6)).flatten().tolist()
        [0.0, 1.0, 0.0]
    """

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() >= 4 and x_seq.numel() and min(x_seq.shape[-2:]) >= 2 and _usable(x_seq) is not None:
            return _IFPoolKernel.apply(x_seq, self.v_threshold, self.v_reset, self.alpha)
        spikes = super().forward(x_seq)  # (T, B, ..., H, W), on the neuron kernel where it can run
        pooled = F.max_pool2d(spikes.flatten(0, -3).unsqueeze(1), 2, 2).squeeze(1)
        return pooled.view(*spikes.shape[:-2], *pooled.shape[-2:])


def _conv3x3(lib: ctypes.CDLL, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``conv2d(x, weight, padding=1)`` for contiguous ``x (N, C, H, W)``, ``weight (O, C, 3, 3)``."""
    n, c, h, w = x.shape
    out = x.new_empty(n, weight.shape[0], h, w)
    _check(lib.hq_conv3x3_forward(x.data_ptr(), weight.data_ptr(), n, c, weight.shape[0], h, w, out.data_ptr(),
                                  _threads()))
    return out


class _Conv3x3Kernel(torch.autograd.Function):
    """A 3x3, stride-1, zero-padded convolution without bias: forward and input gradient by
    ``hq_conv3x3_forward`` (the input gradient is the convolution of the output gradient with the
    flipped, transposed kernel), weight gradient by ``hq_conv3x3_weight_grad``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        lib = _library(x.dtype)
        weight = weight.contiguous()
        ctx.save_for_backward(x, weight)
        return _conv3x3(lib, x, weight)  # (N, O, H, W)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        lib = _library(x.dtype)
        grad_out = grad_out.contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = _conv3x3(lib, grad_out, weight.flip((2, 3)).transpose(0, 1).contiguous())
        if ctx.needs_input_grad[1]:
            grad_w = torch.empty_like(weight)
            n, c, h, w = x.shape
            _check(lib.hq_conv3x3_weight_grad(x.data_ptr(), grad_out.data_ptr(), n, c, weight.shape[0], h, w,
                                              grad_w.data_ptr(), _threads()))
        return grad_x, grad_w


def _qualifies(conv: nn.Conv2d) -> bool:
    return (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and conv.in_channels <= MAX_CONV_CHANNELS)


class NativeConv3x3(nn.Conv2d):
    """:class:`torch.nn.Conv2d` (3x3, stride 1, padding 1) on the native kernel where it can run:
    contiguous NCHW float32/64 CPU input (see the module docstring). The bias, if any, is added after.

    Example:
        >>> conv = NativeConv3x3.from_conv(nn.Conv2d(1, 2, 3, padding=1, bias=False))
        >>> x = torch.rand(4, 1, 8, 8)
        >>> bool(torch.allclose(conv(x), torch.nn.functional.conv2d(x, conv.weight, padding=1), atol=1e-6))
        True
    """

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> NativeConv3x3:
        """A ``NativeConv3x3`` holding ``conv``'s own weight and bias (the same Parameter objects)."""
        new = cls.__new__(cls)
        new.__dict__.update(conv.__dict__)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.numel() and x.is_contiguous() and _usable(x, self.weight) is not None:
            out = _Conv3x3Kernel.apply(x, self.weight)
            return out if self.bias is None else out + self.bias[:, None, None]
        return super().forward(x)


def _is_pool2(module: nn.Module) -> bool:
    """Whether ``module`` is ``TimeDistributed(MaxPool2d(2, 2))`` (no padding, dilation, ceil or indices)."""
    pool = module.layer if type(module) is TimeDistributed else None
    return (type(pool) is nn.MaxPool2d and pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2))
            and pool.padding in (0, (0, 0)) and pool.dilation in (1, (1, 1)) and not pool.ceil_mode
            and not pool.return_indices)


def use_native_layers(model: nn.Module) -> int:
    """Replace, in place, ``model``'s :class:`IFNeuron` modules by :class:`NativeIFNeuron` (or, when
    the next module of an ``nn.Sequential`` is ``TimeDistributed(MaxPool2d(2, 2))``, the pair by
    :class:`NativeIFPool` and ``nn.Identity``) and its plain ``nn.Conv2d`` of 3x3 / stride 1 /
    padding 1 with at most :data:`MAX_CONV_CHANNELS` input channels by :class:`NativeConv3x3`;
    returns how many modules were replaced (a fused pair counts once).

    Parameters (and so optimisers built before), state dicts and hooks are unchanged. Nothing is
    replaced when the kernels cannot be built (``HQNN_NATIVE=0``, no C compiler).
    """
    if layers_library(torch.float32) is None:
        return 0
    replaced = 0
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for k, (name, child) in enumerate(children):
            new: nn.Module | None = None
            if type(child) is IFNeuron:
                if isinstance(parent, nn.Sequential) and k + 1 < len(children) and _is_pool2(children[k + 1][1]):
                    new = NativeIFPool.from_neuron(child)
                    setattr(parent, children[k + 1][0], nn.Identity())
                else:
                    new = NativeIFNeuron.from_neuron(child)
            elif type(child) is nn.Conv2d and _qualifies(child):
                new = NativeConv3x3.from_conv(child)
            if new is not None:
                setattr(parent, name, new)
                replaced += 1
    return replaced
