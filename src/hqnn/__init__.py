"""hqnn: hybrid quantum-classical deep learning for images.

A batched, differentiable quantum-circuit simulator in PyTorch (:mod:`hqnn.sim`), circuit templates
(:mod:`hqnn.templates`), ``torch.nn`` quantum layers (:mod:`hqnn.qnn`), and the published hybrid
models (:mod:`hqnn.models`). ``import hqnn`` needs only torch and numpy; optional toolchains
(PennyLane, Qiskit, OpenQASM) are imported when used.
"""

from hqnn.exceptions import HQNNError
from hqnn.qnn import QuantumLayer
from hqnn.sim import Circuit, run

__version__ = "0.1.0"

__all__ = ["Circuit", "HQNNError", "QuantumLayer", "__version__", "run"]
