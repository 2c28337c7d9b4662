"""The simulator core: batched, differentiable statevector simulation in PyTorch, with a native C
kernel for the CPU (:mod:`hqnn.sim.native`, compiled on first use) behind ``method="auto"``.

Pure functions on tensors. The state is ``(B, 2**n)`` (viewed as ``(B, 2, ..., 2)``), wire 0 is the
most significant bit, complex64 by default and complex128 when the angles are float64; the device
follows the inputs. A :class:`Circuit` describes gates, noise channels and measurements; :func:`run`
simulates it (density matrices when it has channels), :func:`execute` adds shots and gradient methods.
"""

from hqnn.sim.apply import apply_diagonal, apply_matrix, apply_permutation
from hqnn.sim.channels import CHANNELS
from hqnn.sim.circuit import Angle, Circuit, Measurement, Op
from hqnn.sim.execute import run
from hqnn.sim.gates import GATES, gate_matrix, gate_spec
from hqnn.sim.gradients import DIFF_METHODS, execute
from hqnn.sim.measure import expvals, marginal_probabilities, measure, probabilities
from hqnn.sim.native import native_available
from hqnn.sim.noise import NoiseModel
from hqnn.sim.plan import METHODS, compile_circuit
from hqnn.sim.state import zero_state
from hqnn.sim.trajectories import run_trajectories

__all__ = [
    "Angle",
    "CHANNELS",
    "Circuit",
    "DIFF_METHODS",
    "GATES",
    "METHODS",
    "Measurement",
    "NoiseModel",
    "Op",
    "apply_diagonal",
    "apply_matrix",
    "apply_permutation",
    "compile_circuit",
    "execute",
    "expvals",
    "gate_matrix",
    "gate_spec",
    "marginal_probabilities",
    "measure",
    "native_available",
    "probabilities",
    "run",
    "run_trajectories",
    "zero_state",
]
