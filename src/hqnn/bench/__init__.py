"""Benchmark harness and suites: hqnn against PennyLane (default.qubit, lightning), a per-gate PyTorch
baseline and, where installed (extra ``bench-peers``), TensorCircuit-NG, pyqtorch and Qiskit Machine
Learning (:mod:`hqnn.bench.peers`), on the seed systems' circuits and a qubits x layers scaling sweep.

One timing function (:func:`~hqnn.bench.timing.measure`) serves every backend; each backend is
checked against hqnn's float64 reference before it is timed; reports are JSON files with the machine
and versions recorded (:mod:`hqnn.bench.report`). Run them with ``hqnn bench circuits|scaling``.
"""

from hqnn.bench.backends import BACKENDS, PEERS, Backend, CircuitCase, available_backends, make_backend
from hqnn.bench.circuits import BATCHES, CIRCUITS, run_circuits
from hqnn.bench.harness import MODES, Settings, check_backend
from hqnn.bench.pergate import PerGateLayer
from hqnn.bench.report import markdown_table, speedups
from hqnn.bench.scaling import plot_scaling, run_scaling
from hqnn.bench.timing import Timing, machine_info, measure, versions

__all__ = [
    "BACKENDS",
    "BATCHES",
    "Backend",
    "CIRCUITS",
    "CircuitCase",
    "MODES",
    "PEERS",
    "PerGateLayer",
    "Settings",
    "Timing",
    "available_backends",
    "check_backend",
    "machine_info",
    "make_backend",
    "markdown_table",
    "measure",
    "plot_scaling",
    "run_circuits",
    "run_scaling",
    "speedups",
    "versions",
]
