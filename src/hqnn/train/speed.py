"""Training-speed options of the trainer: small-map convolutions, native spiking layers,
channels-last memory format and ``torch.compile``.

:func:`prepare_model` is called once when a trainer is built. It returns the module the trainer
calls (the *network*), which shares its parameters with the model; state dicts are always taken
from the model itself, so checkpoints do not depend on these options. Neither option changes the
maths: convolutions in NHWC and compiled kernels agree with the eager NCHW model within float
tolerance (``tests/train/test_speed.py``).

* ``train.small_map_convs`` (on by default): the model's pointwise and depthwise convolutions
  become :class:`~hqnn.layers.small_conv.SmallMapConv2d`, which computes one-pixel outputs as a
  matrix product or a weighted sum instead of calling oneDNN (the last stages of SP&A-Net on
  32x32 inputs). Done in place on the model; its parameters and state dict are unchanged.
* ``train.native_layers`` (on by default): the model's integrate-and-fire neurons and its 3x3
  convolutions with 1-4 input channels (SQDR-CNN's spiking trunk) become
  :class:`~hqnn.layers.native_layers.NativeIFNeuron` and
  :class:`~hqnn.layers.native_layers.NativeConv3x3`, which run on native CPU kernels (and in
  PyTorch elsewhere). Done in place; parameters and state dict unchanged.
* ``train.channels_last``: the model's 4-D parameters and buffers, and every 4-D input, in NHWC.
  On CPU oneDNN's convolutions run on NHWC without reordering; HCQDL's ghost and depthwise convs
  take about half the time (``hqnn bench train``).
* ``train.compile``: ``torch.compile`` (inductor). The first call compiles (tens of seconds to
  minutes on 2 cores, once per input shape); when compiling fails, for instance without a C
  compiler, the network logs a warning and runs eagerly from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hqnn.layers.native_layers import use_native_layers
from hqnn.layers.small_conv import use_small_map_convs

__all__ = ["ChannelsLast", "CompiledModule", "prepare_model"]

log = logging.getLogger(__name__)


class ChannelsLast(nn.Module):
    """Calls ``model`` with 4-D inputs in channels-last (NHWC) memory format; other inputs as given.

    The model's own parameters are converted by :func:`prepare_model`; this wrapper only holds it.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)


class CompiledModule(nn.Module):
    """``torch.compile(model)`` that falls back to ``model`` itself when compiling fails.

    Compilation happens at the first call (and again for a new input shape); an exception raised
    by the compiler there is logged once and the eager model is used from then on.
    """

    def __init__(self, model: nn.Module, **compile_options: Any):
        super().__init__()
        self.model = model
        # kept outside the module tree: the compiled wrapper would otherwise be a second child
        # holding the same parameters (and a second copy of every state-dict key)
        self._compiled: Callable[..., torch.Tensor] | None
        object.__setattr__(self, "_compiled", torch.compile(model, **compile_options))

    @property
    def compiled(self) -> bool:
        """Whether calls still go through the compiled graph (False after a fallback)."""
        return self._compiled is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._compiled is not None:
            try:
                return self._compiled(x)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: run eagerly instead
                if not _is_compile_failure(exc):
                    raise
                log.warning("torch.compile failed (%s: %s); running the model eagerly",
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                self._compiled = None
        return self.model(x)


def _is_compile_failure(exc: BaseException) -> bool:
    """Whether ``exc`` comes from dynamo/inductor (not from the model's own checks, which must propagate)."""
    module = type(exc).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor")) or isinstance(exc, (ImportError, OSError))


def prepare_model(model: nn.Module, train_config: Any) -> nn.Module:
    """The module the trainer calls for ``train_config``'s ``small_map_convs``, ``native_layers``,
    ``channels_last`` and ``compile``.

    Args:
        model: the built model, already on its device; converted in place for small-map convs, native
            layers and channels-last.
        train_config: a :class:`~hqnn.train.config.TrainConfig` (or anything with these attributes;
            missing ones count as False).

    Returns:
        ``model`` itself when channels-last and compile are off, else a wrapper sharing its parameters.

    Example:
        >>> from hqnn.train.config import TrainConfig
        >>> net = torch.nn.Conv2d(1, 2, 3)
        >>> prepare_model(net, TrainConfig()) is net
        True
    """
    network = model
    if getattr(train_config, "small_map_convs", False):
        use_small_map_convs(model)
    if getattr(train_config, "native_layers", False):
        use_native_layers(model)
    if getattr(train_config, "channels_last", False):
        # 4-D parameters and buffers; others unchanged (memory_format is missing from Module.to's type stubs)
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        network = ChannelsLast(model)
    if getattr(train_config, "compile", False):
        network = CompiledModule(network)
    return network
