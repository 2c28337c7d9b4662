"""Symbolic placeholders used to trace a foreign quantum function once.

A :class:`Symbol` stands for ``const + sum_k coeff_k * source_k`` where each source is an hqnn
:class:`~hqnn.sim.Angle` with unit scale (an input feature or a weight). Linear arithmetic with
numbers works; any non-linear function (``np.sin``, ``torch.cos``, ``math.exp``, ``float()``, a
comparison) raises :class:`~hqnn.exceptions.UnsupportedError`, because hqnn angles are linear in the
inputs and weights.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from hqnn.exceptions import UnsupportedError
from hqnn.sim.circuit import ParamArray

__all__ = ["Symbol", "symbol_array"]

_LINEAR_UFUNCS = {"add", "subtract", "multiply", "true_divide", "negative", "positive"}
_TORCH_LINEAR = {
    **dict.fromkeys(("add", "__add__", "__radd__"), lambda a, b: a + b),
    **dict.fromkeys(("sub", "subtract", "__sub__"), lambda a, b: a - b),
    "__rsub__": lambda a, b: b - a,
    **dict.fromkeys(("mul", "multiply", "__mul__", "__rmul__"), lambda a, b: a * b),
    **dict.fromkeys(("div", "true_divide", "__truediv__", "__div__"), lambda a, b: a / b),
    **dict.fromkeys(("__rtruediv__", "__rdiv__"), lambda a, b: b / a),
    **dict.fromkeys(("neg", "negative", "__neg__"), lambda a: -a),
}


def _float(x) -> float:
    """A one-element real constant as a float."""
    return float(x.reshape(())) if isinstance(x, (np.ndarray, torch.Tensor)) else float(x)


def _nonlinear(what: str) -> UnsupportedError:
    return UnsupportedError(
        f"a gate angle is a non-linear function ({what}) of the inputs or weights; hqnn angles must be "
        f"linear: scale * input, scale * weight, sums of those, or constants")


class Symbol:
    """``const + sum(coeff * source)``; ``terms`` maps a unit-scale Angle to its coefficient."""

    __slots__ = ("terms", "const")

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
            raise _nonlinear("a product of two inputs or weights")
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
        raise _nonlinear("a division by an input or weight")

    def __rtruediv__(self, other):
        raise _nonlinear("a division by an input or weight")

    def __pow__(self, other):
        raise _nonlinear("a power")

    __rpow__ = __pow__

    def __float__(self):
        raise _nonlinear("a conversion to a number, e.g. math.sin or float()")

    def _compare(self, other):
        raise _nonlinear("a comparison")

    __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        if method == "__call__" and ufunc.__name__ in _LINEAR_UFUNCS:
            a = args[0]
            if ufunc.__name__ == "negative":
                return -a
            if ufunc.__name__ == "positive":
                return a
            b = args[1]
            return {"add": lambda: a + b, "subtract": lambda: a - b, "multiply": lambda: a * b,
                    "true_divide": lambda: a / b}[ufunc.__name__]()
        raise _nonlinear(f"numpy.{ufunc.__name__}")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """Linear torch arithmetic with constant tensors (``tensor + symbol``); anything else is rejected."""
        name = getattr(func, "__name__", str(func))
        operation = _TORCH_LINEAR.get(name)
        if operation is None or kwargs:
            raise _nonlinear(f"torch.{name}")
        return operation(*(_float(a) if isinstance(a, torch.Tensor) else a for a in args))

    def __repr__(self) -> str:
        parts = [f"{c:g}*{s.source}[{s.index}]" for s, c in self.terms.items()]
        return "Symbol(" + " + ".join(parts + [f"{self.const:g}"]) + ")"


def symbol_array(params: ParamArray) -> np.ndarray | Symbol:
    """A numpy object array of Symbols with the shape of ``params`` (a bare Symbol for shape ())."""
    angles = params.flat()
    if not params.shape:
        return Symbol({angles[0]: 1.0})
    out = np.empty(len(angles), dtype=object)
    for k, angle in enumerate(angles):
        out[k] = Symbol({angle: 1.0})
    return out.reshape(params.shape)
