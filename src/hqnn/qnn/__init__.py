"""``torch.nn`` layers that own a circuit's weights and call the simulator.

:class:`QuantumLayer` wraps any :class:`hqnn.sim.Circuit`; initialisers are in :mod:`hqnn.qnn.init`.
"""

from hqnn.qnn.init import INITIALIZERS, initialize
from hqnn.qnn.layer import QuantumLayer

__all__ = ["INITIALIZERS", "QuantumLayer", "initialize"]
