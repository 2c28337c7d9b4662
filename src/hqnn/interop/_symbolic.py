"""Symbolic placeholders used to trace a foreign quantum function once, and the features they derive.

A :class:`Symbol` stands for ``const + sum_k coeff_k * source_k`` where each source is an hqnn
:class:`~hqnn.sim.Angle` with unit scale (an input feature or a weight). Linear arithmetic with
numbers stays a Symbol. Inside :func:`deriving` (the tracer's context), a non-linear function of
Symbols (``x[i] * x[j]``, ``np.sin``, ``torch.cos``, ``x ** 2``, ``w / x``) becomes a new *derived
feature*: a column that :class:`FeatureMap` computes in torch from the inputs and weights before the
circuit runs, and that the circuit reads like an input (so its gradients flow through autograd).
Outside that context, and always for ``float()``, ``math.sin`` and comparisons (their result would
have to be a Python number), non-linear use raises :class:`~hqnn.exceptions.UnsupportedError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hqnn.exceptions import UnsupportedError
from hqnn.sim.circuit import INPUT, Angle, ParamArray

__all__ = ["FeatureMap", "Symbol", "deriving", "symbol_array"]

_LINEAR_UFUNCS = {"add", "subtract", "multiply", "true_divide", "negative", "positive"}
_TORCH_LINEAR = {
    **dict.fromkeys(("add", "__add__", "__radd__"), lambda a, b: a + b),
    **dict.fromkeys(("sub", "subtract", "__sub__"), lambda a, b: a - b),
    "__rsub__": lambda a, b: b - a,
    **dict.fromkeys(("mul", "multiply", "__mul__", "__rmul__"), lambda a, b: a * b),
    **dict.fromkeys(("div", "true_divide", "__truediv__", "__div__"), lambda a, b: a / b),
    **dict.fromkeys(("__rtruediv__", "__rdiv__"), lambda a, b: b / a),
    **dict.fromkeys(("neg", "negative", "__neg__"), lambda a: -a),
    **dict.fromkeys(("pow", "__pow__"), lambda a, b: a**b),
    "__rpow__": lambda a, b: b**a,
}


# Non-linear functions a derived feature may apply, by canonical name (numpy ufunc names).
_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "multiply": torch.mul, "true_divide": torch.div, "power": torch.pow, "arctan2": torch.atan2,
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "arcsin": torch.asin, "arccos": torch.acos,
    "arctan": torch.atan, "sinh": torch.sinh, "cosh": torch.cosh, "tanh": torch.tanh, "exp": torch.exp,
    "log": torch.log, "sqrt": torch.sqrt, "square": torch.square, "absolute": torch.abs,
    "sigmoid": torch.sigmoid, "identity": lambda x: x,
}
# Other spellings of those names (torch functions, Tensor methods, numpy aliases).
_ALIASES = {"mul": "multiply", "div": "true_divide", "divide": "true_divide", "pow": "power", "atan2": "arctan2",
            "asin": "arcsin", "acos": "arccos", "atan": "arctan", "abs": "absolute", "__abs__": "absolute",
            "__truediv__": "true_divide", "__pow__": "power"}
_UNARY = [name for name in _FUNCTIONS if name not in ("multiply", "true_divide", "power", "arctan2", "identity")]


def _canonical(name: str) -> str | None:
    name = _ALIASES.get(name, name)
    return name if name in _FUNCTIONS else None


def _float(x) -> float:
    """A one-element real constant as a float."""
    return float(x.reshape(())) if isinstance(x, (np.ndarray, torch.Tensor)) else float(x)


def _nonlinear(what: str) -> UnsupportedError:
    return UnsupportedError(
        f"a gate angle is a non-linear function ({what}) of the inputs or weights whose value would be needed "
        "while tracing; use numpy/torch/qml.math functions (np.sin, torch.cos, x * w), not math.* or float()")


@dataclass(frozen=True)
class Feature:
    """One derived feature column: ``function(*args)`` where args are Symbols or floats."""

    function: str
    args: tuple


@dataclass(frozen=True)
class AmplitudeFeature:
    """The RY angles preparing a real amplitude vector (see :mod:`hqnn.interop._pl_trace`).

    ``entries`` (length 2**n, Symbols or floats) are the amplitudes; the block gives ``2**n - 1``
    angle columns (level q = 0..n-1, then control state) and one column holding the factor the
    outputs are multiplied by (the squared norm when PennyLane would not normalise, else 1).
    """

    entries: tuple
    normalize: bool
    validate_norm: bool

    @property
    def width(self) -> int:
        return len(self.entries)


class FeatureMap:
    """The derived features of one trace; ``fm(inputs (B, n_raw), weights (W,)) -> ((B, width), scale)``.

    ``scale`` is None, or ``(B, 1)``: the factor the circuit's outputs are multiplied by.
    """

    def __init__(self, n_raw: int):
        self.n_raw, self.width = n_raw, n_raw
        self.blocks: list[Feature | AmplitudeFeature] = []
        self.scale_columns: list[int] = []

    def __bool__(self) -> bool:
        return bool(self.blocks)

    def _columns(self, block) -> list[Symbol]:
        start = self.width
        self.blocks.append(block)
        self.width += getattr(block, "width", 1)
        return [Symbol({Angle(INPUT, start + k): 1.0}) for k in range(getattr(block, "width", 1))]

    def derive(self, function: str, *args) -> Symbol | float:
        """A new column ``function(*args)``; constant arguments give a float instead."""
        if not any(isinstance(a, Symbol) for a in args):
            return float(_FUNCTIONS[function](*(torch.tensor(_float(a), dtype=torch.float64) for a in args)))
        return self._columns(Feature(function, tuple(a if isinstance(a, Symbol) else _float(a) for a in args)))[0]

    def amplitudes(self, entries, normalize: bool, validate_norm: bool) -> list[Symbol]:
        """Columns for :class:`AmplitudeFeature`: ``2**n - 1`` angles, then the output scale."""
        entries = tuple(e if isinstance(e, Symbol) else _float(e) for e in entries)
        columns = self._columns(AmplitudeFeature(entries, normalize, validate_norm))
        self.scale_columns.append(self.width - 1)
        return columns[:-1]

    @staticmethod
    def _value(x, columns: list[torch.Tensor], weights: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, Symbol):
            return torch.full_like(like, x)
        value = torch.full_like(like, x.const)
        for source, coeff in x.terms.items():
            value = value + coeff * (columns[source.index] if source.source == INPUT else weights[source.index])
        return value

    def __call__(self, inputs: torch.Tensor, weights: torch.Tensor | None):
        columns = list(inputs.unbind(-1))  # (B,) each
        like = inputs[:, 0] if inputs.shape[1] else inputs.new_zeros(inputs.shape[0])
        weights = inputs.new_zeros(0) if weights is None else weights  # no weights: no symbol reads them
        for block in self.blocks:
            raw = block.args if isinstance(block, Feature) else block.entries
            args = [self._value(a, columns, weights, like) for a in raw]
            if isinstance(block, Feature):
                columns.append(_FUNCTIONS[block.function](*args))
            else:
                from hqnn.interop._pl_trace import amplitude_angles  # the tracer owns the angle convention

                angles, scale = amplitude_angles(torch.stack(args, -1), block.normalize, block.validate_norm)
                columns.extend(angles.unbind(-1))
                columns.append(scale)
        out = torch.stack(columns, -1)  # (B, width)
        scale = None
        for k in self.scale_columns:
            scale = out[:, k : k + 1] if scale is None else scale * out[:, k : k + 1]
        return out, scale


_ACTIVE: contextvars.ContextVar[FeatureMap | None] = contextvars.ContextVar("hqnn_feature_map", default=None)


@contextlib.contextmanager
def deriving(feature_map: FeatureMap):
    """Within this block non-linear functions of Symbols become columns of ``feature_map``."""
    token = _ACTIVE.set(feature_map)
    try:
        yield feature_map
    finally:
        _ACTIVE.reset(token)


def _derive(function: str, *args, what: str):
    feature_map = _ACTIVE.get()
    if feature_map is None:
        raise _nonlinear(what)
    return feature_map.derive(function, *args)


class Symbol:
    """``const + sum(coeff * source)``; ``terms`` maps a unit-scale Angle to its coefficient."""

    __slots__ = ("terms", "const")
    __array_priority__ = 100

    def __init__(self, terms: dict | None = None, const: float = 0.0):
        self.terms, self.const = dict(terms or {}), float(const)

    @staticmethod
    def _is_number(x) -> bool:
        """A real constant: a Python/numpy real, or a one-element real array or tensor."""
        if isinstance(x, (np.ndarray, torch.Tensor)):
            return x.numel() == 1 and not x.is_complex() if isinstance(x, torch.Tensor) else (
                x.size == 1 and x.dtype.kind in "iuf")
        return isinstance(x, numbers.Real) and not isinstance(x, bool)

    def __add__(self, other):
        if isinstance(other, Symbol):
            terms = dict(self.terms)
            for source, coeff in other.terms.items():
                terms[source] = terms.get(source, 0.0) + coeff
            return Symbol(terms, self.const + other.const)
        if self._is_number(other):
            return Symbol(self.terms, self.const + _float(other))
        return NotImplemented

    __radd__ = __add__

    def __mul__(self, other):
        if isinstance(other, Symbol):
            return _derive("multiply", self, other, what="a product of two inputs or weights")
        if self._is_number(other):
            k = _float(other)
            return Symbol({s: c * k for s, c in self.terms.items()}, self.const * k)
        return NotImplemented

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __pos__(self):
        return self

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __truediv__(self, other):
        if self._is_number(other):
            return self * (1.0 / _float(other))
        if isinstance(other, Symbol):
            return _derive("true_divide", self, other, what="a division by an input or weight")
        return NotImplemented

    def __rtruediv__(self, other):
        if self._is_number(other):
            return _derive("true_divide", other, self, what="a division by an input or weight")
        return NotImplemented

    def __pow__(self, other):
        if isinstance(other, Symbol) or self._is_number(other):
            return _derive("power", self, other, what="a power")
        return NotImplemented

    def __rpow__(self, other):
        if self._is_number(other):
            return _derive("power", other, self, what="a power")
        return NotImplemented

    def __abs__(self):
        return _derive("absolute", self, what="abs")

    def conjugate(self):
        """Symbols are real."""
        return self

    conj = conjugate

    @property
    def real(self):
        return self

    def __float__(self):
        raise _nonlinear("a conversion to a number, e.g. math.sin or float()")

    def _compare(self, other):
        raise _nonlinear("a comparison")

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        name = ufunc.__name__
        if method == "__call__" and not kwargs and name in _LINEAR_UFUNCS:
            a = args[0]
            if name == "negative":
                return -a
            if name == "positive":
                return a
            b = args[1]
            return {"add": lambda: a + b, "subtract": lambda: a - b, "multiply": lambda: a * b,
                    "true_divide": lambda: a / b}[name]()
        if method == "__call__" and not kwargs and _canonical(name):
            return _derive(_canonical(name), *args, what=f"numpy.{name}")
        raise _nonlinear(f"numpy.{name}")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """Torch arithmetic with constant tensors (``tensor + symbol``) and the functions of _FUNCTIONS."""
        name = getattr(func, "__name__", str(func))
        if kwargs:
            raise _nonlinear(f"torch.{name} with keyword arguments")
        args = tuple(_float(a) if isinstance(a, torch.Tensor) else a for a in args)
        operation = _TORCH_LINEAR.get(name)
        if operation is not None:
            return operation(*args)
        if _canonical(name):
            return _derive(_canonical(name), *args, what=f"torch.{name}")
        raise _nonlinear(f"torch.{name}")

    def __repr__(self) -> str:
        parts = [f"{c:g}*{s.source}[{s.index}]" for s, c in self.terms.items()]
        return "Symbol(" + " + ".join(parts + [f"{self.const:g}"]) + ")"


def _method(function: str):
    def method(self):
        return _derive(function, self, what=f"{function}()")

    method.__name__ = function
    return method


for _name in _UNARY:  # numpy calls these methods on each element of an object array (np.sin(x))
    setattr(Symbol, _name, _method(_name))
for _alias, _target in (("asin", "arcsin"), ("acos", "arccos"), ("atan", "arctan"), ("abs", "absolute")):
    setattr(Symbol, _alias, _method(_target))


def symbol_array(params: ParamArray) -> np.ndarray | Symbol:
    """A numpy object array of Symbols with the shape of ``params`` (a bare Symbol for shape ())."""
    angles = params.flat()
    if not params.shape:
        return Symbol({angles[0]: 1.0})
    out = np.empty(len(angles), dtype=object)
    for k, angle in enumerate(angles):
        out[k] = Symbol({angle: 1.0})
    return out.reshape(params.shape)
