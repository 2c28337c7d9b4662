"""Adapters to other quantum toolchains: PennyLane, OpenQASM 2/3, Qiskit, and resource estimates.

Importing this package loads none of the optional toolchains; each adapter imports its package when
it is used and raises :class:`~hqnn.exceptions.MissingDependencyError` naming the extra to install.
Submodules: :mod:`~hqnn.interop.pennylane` (``TorchLayer``, ``to_pennylane``),
:mod:`~hqnn.interop.qasm` (``to_qasm``), :mod:`~hqnn.interop.qiskit` (``to_qiskit``),
:mod:`~hqnn.interop.resources` (``resources``) and :mod:`~hqnn.interop.conventions` (wire orders).
"""

from hqnn.interop import conventions
from hqnn.interop.qasm import to_qasm
from hqnn.interop.resources import Resources, resources

__all__ = ["Resources", "TorchLayer", "conventions", "resources", "to_pennylane", "to_qasm", "to_qiskit"]

_LAZY = {"TorchLayer": "hqnn.interop.pennylane", "to_pennylane": "hqnn.interop.pennylane",
         "to_qiskit": "hqnn.interop.qiskit"}


def __getattr__(name: str):
    """Load the PennyLane and Qiskit adapters on first use (their modules import nothing optional)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hqnn.interop' has no attribute {name!r}")
