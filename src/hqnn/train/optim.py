"""Optimisers and learning-rate schedules built from the config, one fresh pair per training phase,
:class:`FlatParameters`, which lets an optimiser step over all parameters at once, and
:class:`OnePassNAdam`, NAdam's update as one pass over each buffer (``native_optim.c``)."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from pathlib import Path

import torch
from torch.optim.nadam import nadam

from hqnn.sim.native import build_library, cached_library
from hqnn.train.config import OptimConfig, ScheduleConfig

__all__ = ["FlatParameters", "OnePassNAdam", "build_optimizer", "build_scheduler"]


def build_optimizer(
    params: Iterable[torch.nn.Parameter], config: OptimConfig, fused: bool = False
) -> torch.optim.Optimizer:
    """AdamW, Adam, SGD (momentum, optional Nesterov) or NAdam over ``params`` with the config's
    learning rate and weight decay (applied to every parameter, biases and norms included, as in
    the CIFAR-100 recipe).

    Args:
        params: the parameters to train.
        config: the optim section.
        fused: AdamW, Adam and SGD as torch's fused kernel (one pass over each parameter instead of
            one per operation; 3-4x faster steps for SP&A-Net's 2.8M parameters on CPU) where it
            can run: real floating-point parameters on the CPU or a GPU. PyTorch has no fused
            NAdam: it becomes :class:`OnePassNAdam` (PyTorch's multi-tensor implementation where
            the native kernel cannot run). Off: PyTorch's default implementation for the device
            (a loop on the CPU).

    Returns:
        The optimiser.
    """
    params = list(params)
    use_fused = True if fused and _fusable(params) else None  # None: torch's default
    if config.name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=use_fused)
    if config.name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=use_fused)
    if config.name == "nadam":
        nadam_class = OnePassNAdam if use_fused else torch.optim.NAdam
        return nadam_class(params, lr=config.lr, weight_decay=config.weight_decay, foreach=use_fused)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay,
        fused=use_fused,
    )


_OPTIM_SOURCE = Path(__file__).with_name("native_optim.c")
_OPTIM_STATE: dict = {}  # dtype -> loaded library, or the reason it is not available


def _load_optim(variant: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(build_library(_OPTIM_SOURCE, "hqnn_optim", variant)))
    ptr, f64 = ctypes.c_void_p, ctypes.c_double
    lib.hq_nadam.argtypes = [ptr, ptr, ptr, ptr, ctypes.c_int64, f64, f64, f64, ctypes.c_int, f64, f64, f64, f64,
                             f64, ctypes.c_int]
    lib.hq_nadam.restype = None
    return lib


def _optim_library(dtype: torch.dtype) -> ctypes.CDLL | None:
    """The one-pass NAdam kernel for ``float32`` / ``float64`` (None elsewhere, or when it cannot be built)."""
    return cached_library(_OPTIM_STATE, dtype, _load_optim, "hqnn: the one-pass NAdam kernel could not be built "
                          "({reason}); NAdam runs PyTorch's multi-tensor implementation instead (slower)")


class OnePassNAdam(torch.optim.NAdam):
    """:class:`torch.optim.NAdam` whose update of each dense float32/64 CPU tensor is one pass over
    its parameter, gradient and moment buffers (``native_optim.c``) instead of PyTorch's nine or so:
    per element the arithmetic of PyTorch's multi-tensor NAdam in its order, the same state and state
    dict. SP&A-Net's 2.8M parameters in one flat buffer (``train.flat_params``): 7.1 ms -> 2.1 ms a
    step at 1 thread (PyTorch's multi-tensor NAdam against this, AMD EPYC, the other core busy).

    A group with ``maximize``, ``capturable`` or ``differentiable``, or a tensor that is complex, not
    on the CPU, or not laid out like its gradient, steps through PyTorch's own implementation.

    Example:
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = OnePassNAdam([w], lr=0.1)
        >>> w.grad = torch.ones(3)
        >>> opt.step()
        >>> [round(x, 4) for x in w.tolist()]
        [0.8944, 0.8944, 0.8944]
    """

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, mu_products, steps = [], [], [], [], [], []  # type: ignore[var-annotated]
            has_complex = self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, mu_products, steps)
            plain = not (group["maximize"] or group["capturable"] or group["differentiable"] or has_complex)
            rest = [[] for _ in range(6)]  # tensors for PyTorch's implementation, in nadam()'s order
            for tensors in zip(params, grads, exp_avgs, exp_avg_sqs, mu_products, steps):
                lib = _optim_library(tensors[0].dtype) if plain else None
                if lib is None or not _one_layout(*tensors[:4]):
                    for kept, t in zip(rest, tensors):
                        kept.append(t)
                    continue
                self._one_pass(lib, group, *tensors)
            if rest[0]:
                nadam(
                    *rest, beta1=group["betas"][0], beta2=group["betas"][1], lr=group["lr"],
                    weight_decay=group["weight_decay"], momentum_decay=group["momentum_decay"], eps=group["eps"],
                    maximize=group["maximize"], decoupled_weight_decay=group["decoupled_weight_decay"],
                    foreach=group["foreach"], capturable=group["capturable"], differentiable=group["differentiable"],
                    has_complex=has_complex)
        return loss

    @staticmethod
    def _one_pass(lib, group, param, grad, exp_avg, exp_avg_sq, mu_product, step) -> None:
        """One tensor's step; the scalars as PyTorch's multi-tensor NAdam computes them."""
        beta1, beta2 = group["betas"]
        lr, momentum_decay = float(group["lr"]), group["momentum_decay"]
        step += 1
        t = step.item()
        bias_sqrt = (1 - beta2**t) ** 0.5
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * momentum_decay)))
        mu_product.mul_(mu)
        product = mu_product.item()
        step_grad = (lr * (1.0 - mu) / (1.0 - product)) * -1
        step_avg = (lr * mu_next / (1.0 - product * mu_next)) * -1
        lib.hq_nadam(param.data_ptr(), grad.data_ptr(), exp_avg.data_ptr(), exp_avg_sq.data_ptr(), param.numel(),
                     beta1, beta2, group["weight_decay"], int(group["decoupled_weight_decay"]), lr, group["eps"],
                     bias_sqrt, step_grad, step_avg, torch.get_num_threads())


def _one_layout(*tensors: torch.Tensor) -> bool:
    """Whether ``tensors`` are dense CPU tensors of one dtype, shape and strides (element i of each
    is the same element)."""
    first = tensors[0]
    return all(t.device.type == "cpu" and t.dtype == first.dtype and t.shape == first.shape
               and t.stride() == first.stride() and t.is_contiguous() for t in tensors)


def _fusable(params: list[torch.nn.Parameter]) -> bool:
    """Whether torch's fused optimisers take ``params``: real floating point, on the CPU or CUDA."""
    return bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params
    )


# the optimiser state that is one number per parameter tensor (the step count, NAdam's running
# product of momentum factors) rather than one per element, in the optimisers build_optimizer makes
_SCALAR_STATE = frozenset({"step", "mu_product"})


class FlatParameters:
    """Parameters re-homed as views of one flat buffer per dtype and device, their gradients as views
    of a second one, so that an optimiser over :attr:`tensors` takes one pass per operation over all
    of them instead of one per parameter tensor (``train.flat_params``).

    Each parameter keeps its identity, shape, strides (channels-last stays channels-last) and value;
    only its storage moves. Autograd adds each new gradient into the parameter's view of the flat
    gradient, so gradients must be cleared with :meth:`zero_grad`, never set to None. SP&A-Net has
    284 parameter tensors: a NAdam step over them takes ~9.6 ms as a loop and ~2.9 ms over the flat
    buffer (foreach), and AdamW's fused step 2.1 ms -> 0.7 ms (2 cores).

    One difference from a per-tensor optimiser: a parameter that gets no gradient in a step is
    updated as if its gradient were zero (momentum and weight decay still move it), where PyTorch
    skips it. :meth:`unused` names such parameters after the first backward pass.

    The optimiser's state dict converts both ways (:meth:`per_parameter_state`,
    :meth:`flat_state`), so checkpoints hold the per-tensor form whatever the option.

    Args:
        params: the parameters to train (leaf tensors; each once).

    Example:
        >>> layer = torch.nn.Linear(3, 2)
        >>> flat = FlatParameters(layer.parameters())
        >>> [tuple(t.shape) for t in flat.tensors], layer.weight.shape
        ([(8,)], torch.Size([2, 3]))
    """

    def __init__(self, params: Iterable[torch.nn.Parameter]):
        self.params = list(params)
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("FlatParameters: a parameter appears more than once")
        groups: dict[tuple[torch.dtype, torch.device], list[int]] = {}
        for i, p in enumerate(self.params):
            groups.setdefault((p.dtype, p.device), []).append(i)
        self.tensors: list[torch.nn.Parameter] = []
        self.members: list[list[int]] = list(groups.values())  # per flat tensor, its parameters' indices
        self._views: list[tuple[int, tuple[int, ...], tuple[int, ...], int]] = [(0, (), (), 0)] * len(self.params)
        for g, members in enumerate(self.members):
            first = self.params[members[0]]
            data = torch.empty(sum(self.params[i].numel() for i in members), dtype=first.dtype, device=first.device)
            grad = torch.zeros_like(data)
            offset = 0
            for i in members:
                p = self.params[i]
                strides = p.stride() if _dense(p) else _contiguous_strides(p.shape)
                self._views[i] = (g, tuple(p.shape), tuple(strides), offset)
                view = data.as_strided(p.shape, strides, offset)
                view.copy_(p.detach())
                p.data = view
                p.grad = grad.as_strided(p.shape, strides, offset)
                offset += p.numel()
            flat = torch.nn.Parameter(data)
            flat.grad = grad
            self.tensors.append(flat)
        self._used: set[int] = set()
        self._hooks = [p.register_post_accumulate_grad_hook(lambda _p, i=i: self._used.add(i))
                       for i, p in enumerate(self.params)]

    def zero_grad(self) -> None:
        """Set every gradient to zero (in place: the parameters' gradients stay views of the flat one)."""
        for flat in self.tensors:
            assert flat.grad is not None
            flat.grad.zero_()

    def unused(self) -> list[int] | None:
        """The indices of the parameters that got no gradient in the first backward pass, when called
        after it (the hooks that watch are removed then); None on every later call."""
        if not self._hooks:
            return None
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        return [i for i in range(len(self.params)) if i not in self._used]

    def _view(self, i: int, flat: torch.Tensor) -> torch.Tensor:
        _, shape, strides, offset = self._views[i]
        return flat.as_strided(shape, strides, offset + flat.storage_offset())

    def per_parameter_state(self, state: dict) -> dict:
        """The state dict of an optimiser over :attr:`tensors` as that of one over :attr:`params`
        (their indices, shapes and strides; the element-wise state as views of the flat tensors)."""
        (group,) = state["param_groups"]
        per: dict[int, dict] = {}
        for g, members in enumerate(self.members):
            entry = state["state"].get(g)
            if entry is None:
                continue
            for i in members:
                per[i] = {k: (self._view(i, v) if k not in _SCALAR_STATE and torch.is_tensor(v)
                              and v.shape == self.tensors[g].shape else v) for k, v in entry.items()}
        return {"state": per, "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def flat_state(self, state: dict) -> dict:
        """A per-parameter optimiser state dict (as :meth:`per_parameter_state` makes, or a run
        without flat parameters saved) for the optimiser over :attr:`tensors`.

        Raises:
            ConfigError: the state is not of these parameters (another count or shapes), or its
                per-tensor step counts differ, which one flat tensor cannot continue.
        """
        from hqnn.exceptions import ConfigError

        groups = state["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ConfigError(
                f"the optimiser state has {[len(g['params']) for g in groups]} parameters in its groups; this "
                f"model trains {len(self.params)} in one group"
            )
        ids = groups[0]["params"]
        flat_states: dict[int, dict] = {}
        for g, members in enumerate(self.members):
            entries = [state["state"].get(ids[i]) for i in members]
            if all(e is None for e in entries):
                continue
            if any(e is None for e in entries) or len({tuple(sorted(e)) for e in entries}) > 1:
                raise ConfigError("the optimiser state covers some parameters and not others; resume with "
                                  "train.flat_params=false")
            merged = {}
            for key in entries[0]:
                values = [e[key] for e in entries]
                if key in _SCALAR_STATE or not torch.is_tensor(values[0]):
                    if any(not _same(v, values[0]) for v in values):
                        raise ConfigError(f"the parameters' optimiser '{key}' differ; resume with "
                                          "train.flat_params=false")
                    merged[key] = values[0]
                    continue
                flat = torch.empty_like(self.tensors[g])
                for i, value in zip(members, values):
                    view = self._view(i, flat)
                    if value.shape != view.shape:
                        raise ConfigError(f"optimiser state '{key}' of parameter {ids[i]} has shape "
                                          f"{tuple(value.shape)}; the parameter has {tuple(view.shape)}")
                    view.copy_(value)
                merged[key] = flat
            flat_states[g] = merged
        return {"state": flat_states, "param_groups": [{**groups[0], "params": list(range(len(self.tensors)))}]}


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t``'s elements fill ``t.numel()`` consecutive slots of memory (any order of dimensions)."""
    order = sorted(range(t.dim()), key=lambda d: t.stride(d))
    expected = 1
    for d in order:
        if t.shape[d] != 1 and t.stride(d) != expected:
            return False
        expected *= t.shape[d]
    return True


def _contiguous_strides(shape: torch.Size) -> list[int]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return strides[::-1]


def _same(a, b) -> bool:
    if torch.is_tensor(a) and torch.is_tensor(b):
        return a.shape == b.shape and bool(torch.equal(a.cpu(), b.cpu()))
    return a == b


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: ScheduleConfig, lr: float, epochs: int, steps_per_epoch: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, bool]:
    """The schedule of one phase and whether it steps every batch.

    ``onecycle``: ``OneCycleLR(max_lr, epochs, steps_per_epoch, pct_start)`` with PyTorch's other
    defaults (cosine, start max_lr/25, end max_lr/25e4, beta1 cycled 0.85-0.95), stepped every
    batch. ``cosine``: ``CosineAnnealingLR(T_max=epochs, eta_min=min_lr)``, stepped every epoch.

    Args:
        optimizer: the phase's optimiser.
        config: the schedule section.
        lr: the optimiser's learning rate (OneCycle's peak when ``max_lr`` is None).
        epochs: epochs in this phase.
        steps_per_epoch: batches per epoch.

    Returns:
        ``(scheduler or None, per_batch)``.
    """
    if config.name == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.max_lr if config.max_lr is not None else lr,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            pct_start=config.pct_start,
        )
        return scheduler, True
    if config.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=config.min_lr), False
    return None, False
