"""The simulator core: batched, differentiable statevector simulation in PyTorch.

Pure functions on tensors. The state is ``(B, 2**n)`` (viewed as ``(B, 2, ..., 2)``), wire 0 is the
most significant bit, complex64 by default and complex128 when the angles are float64; the device
follows the inputs. A :class:`Circuit` describes gates and measurements; :func:`run` simulates it.
"""

from hqnn.sim.apply import apply_diagonal, apply_matrix, apply_permutation
from hqnn.sim.circuit import Angle, Circuit, Measurement, Op
from hqnn.sim.execute import run
from hqnn.sim.gates import GATES, gate_matrix, gate_spec
from hqnn.sim.measure import expvals, marginal_probabilities, measure, probabilities
from hqnn.sim.plan import compile_circuit
from hqnn.sim.state import zero_state

__all__ = [
    "Angle",
    "Circuit",
    "GATES",
    "Measurement",
    "Op",
    "apply_diagonal",
    "apply_matrix",
    "apply_permutation",
    "compile_circuit",
    "expvals",
    "gate_matrix",
    "gate_spec",
    "marginal_probabilities",
    "measure",
    "probabilities",
    "run",
    "zero_state",
]
