"""Run a circuit on a batch of inputs: resolve the angles, evolve ``|0...0>``, measure.

:func:`run` is the one entry point; it validates its arguments once and hands the work to the
compiled execution plan (:mod:`hqnn.sim.plan`). The angle and matrix helpers it re-exports live in
:mod:`hqnn.sim.apply`, below the plans.
"""

from __future__ import annotations

import torch

from hqnn.exceptions import ShapeError
from hqnn.sim.apply import angle_value, check_finite_angles, op_angles, op_matrix, run_gates
from hqnn.sim.circuit import Circuit
from hqnn.sim.gates import complex_dtype_for
from hqnn.sim.plan import compile_circuit
from hqnn.sim.state import check_memory

__all__ = ["run", "run_gates", "angle_value", "op_angles", "prepare_arguments", "check_finite_angles", "op_matrix"]


def prepare_arguments(circuit: Circuit, inputs, weights, dtype=None, check_finite: bool = True):
    """Validate and convert ``inputs (B, n_inputs)`` and ``weights (n_weights,)``.

    Returns:
        ``(inputs (B, n_inputs), weights (n_weights,), complex dtype, device, B)``.

    Raises:
        ShapeError: wrong input width, batch shape or weight shape.
        ValueRangeError: NaN or infinite angles.
    """
    if (dtype is None and isinstance(inputs, torch.Tensor) and isinstance(weights, torch.Tensor)
            and inputs.dtype is weights.dtype and inputs.dtype in (torch.float32, torch.float64)
            and inputs.device == weights.device
            and inputs.dim() == 2 and inputs.shape[1] == circuit.n_inputs and weights.shape == (circuit.n_weights,)):
        # the common case (a layer's call): nothing to convert
        if check_finite:
            check_finite_angles(inputs, weights)
        return inputs, weights, complex_dtype_for(inputs.dtype), inputs.device, inputs.shape[0]
    tensors = [t for t in (inputs, weights) if isinstance(t, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    real = torch.float64 if any(t.dtype in (torch.float64, torch.complex128) for t in tensors) else torch.float32
    if dtype is not None:
        real = torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32
    if inputs is None:
        if circuit.n_inputs:
            raise ShapeError(f"the circuit reads {circuit.n_inputs} inputs; got inputs=None")
        inputs = torch.zeros(1, 0, dtype=real, device=device)
    inputs = torch.as_tensor(inputs, device=device)
    if inputs.is_complex():
        raise ShapeError(f"inputs must be real angles; got dtype {inputs.dtype}")
    inputs = inputs.to(real)
    if inputs.dim() != 2 or inputs.shape[1] != circuit.n_inputs:
        raise ShapeError(
            f"inputs must have shape (batch, {circuit.n_inputs}) for this circuit; got {tuple(inputs.shape)}")
    if weights is None:
        if circuit.n_weights:
            raise ShapeError(f"the circuit has {circuit.n_weights} weights; got weights=None")
        weights = torch.zeros(0, dtype=real, device=device)
    weights = torch.as_tensor(weights, device=device).to(real)
    if weights.shape != (circuit.n_weights,):
        raise ShapeError(f"weights must have shape ({circuit.n_weights},); got {tuple(weights.shape)}")
    if check_finite:
        check_finite_angles(inputs, weights)
    return inputs, weights, complex_dtype_for(real), device, inputs.shape[0]


def run(circuit: Circuit, inputs=None, weights=None, *, dtype=None, method: str = "auto") -> torch.Tensor:
    """Simulate ``circuit`` on a batch and return its measurements.

    The complex dtype follows the arguments: float64 inputs or weights (or ``dtype=torch.float64`` /
    ``torch.complex128``) give complex128, otherwise complex64. The device follows the tensors.

    Args:
        circuit: the circuit.
        inputs: ``(B, n_inputs)`` real angles (None when the circuit reads no inputs: B = 1).
        weights: ``(n_weights,)`` (None when it has none).
        dtype: force the precision.
        method: "auto" (the native CPU kernel where it applies, else the fused PyTorch engine),
            "native", "engine", or "gates" (one gate at a time; slow, for reference); see docs/simulator.md.

    Returns:
        ``(B, n_outputs)`` real, or ``(B, 2**n)`` complex for a state measurement.

    Raises:
        ShapeError, ValueRangeError, ResourceError.

    Example:
        >>> from hqnn.templates.recipes import rezk_qnn
        >>> c = rezk_qnn()
        >>> run(c, torch.zeros(3, 4), torch.zeros(c.n_weights)).shape
        torch.Size([3, 4])
    """
    inputs, weights, cdtype, device, batch = prepare_arguments(circuit, inputs, weights, dtype, check_finite=False)
    check_memory(2**circuit.n_qubits, max(batch, 1), cdtype, device)  # before compiling: plans hold 2**n tables
    plan = compile_circuit(circuit, method)
    if not plan.checks_finite:  # the native kernel checks every angle it reads, at no extra cost
        check_finite_angles(inputs, weights)
    if batch == 0:  # like torch layers: no rows in, no rows out (still connected to the weights)
        is_state = any(m.kind == "state" for m in circuit.measurements)
        empty = torch.zeros(0, circuit.n_outputs, dtype=cdtype if is_state else weights.dtype, device=device)
        return empty + 0 * weights.sum() + 0 * inputs.sum()
    return plan.execute(inputs, weights, cdtype)
