"""Density-matrix simulation: batched, differentiable, for circuits with noise channels.

The state is ρ ``(B, 2**n, 2**n)``; flattened to ``(B, 4**n)`` it is a state on 2n wires where
wire w is ρ's row bit and wire n + w its column bit, so a gate U on wires W acts as U ⊗ conj(U) on
wires (W, n + W) through :func:`hqnn.sim.apply.apply_matrix`, and a channel as its superoperator
(:mod:`hqnn.sim.channels`).

The plan is built for few large tensor passes: the single-qubit gates and channels that precede
the first multi-qubit gate build ρ as a product of per-wire 2x2 factors; later runs of single-qubit
gates and channels on a wire fuse into one 4x4 superoperator per sample; runs of diagonal
two-qubit gates (CZ, CRZ, IsingZZ) become one elementwise phase on ρ and runs of permutations
(CNOT, SWAP, Toffoli) one gather. Wires whose runs of single-qubit ops have the same structure
(the same gates and channels, angles from the same sources) build their superoperators as one
stacked tensor ``(..., wires, 4, 4)``, so a layer of 9 wires costs the small-op overhead of one.

When only diagonal and permutation stages follow the product state and nothing asks for the whole
ρ (expectations and probabilities, not ``state()``), ρ is never formed: the few entries the
measurements read are products of the per-wire factors and the diagonal phases, gathered at
those entries (SQDR-CNN's noisy circuit at batch 16 reads 9,216 of 262,144 entries per sample; its
forward+backward took about 20x less time than with ρ formed, 15 ms against 300 ms on one busy core).

Channel strengths may be read from the inputs per sample, transformed (``c.inputs[i].sigmoid()``)
or picked at random (``random_offset(k)``): one uniform number u per sample and evaluation gives
r = floor(u·k) for every such strength, so all random strengths of one evaluation share r.
"""

from __future__ import annotations

import torch

from hqnn.exceptions import ShapeError
from hqnn.sim.apply import angle_value, apply_matrix, op_matrix, wire_permutation
from hqnn.sim.channels import channel_spec, superop_from_kraus
from hqnn.sim.circuit import Circuit, Op
from hqnn.sim.gates import GateKind, gate_spec
from hqnn.sim.measure import marginal_probabilities
from hqnn.sim.prims import perm_table
from hqnn.sim.state import check_memory

__all__ = ["DensityPlan", "op_superop", "readout_table", "apply_readout", "readout_probs",
           "needs_uniform", "combine_measurements"]

# Wires per Kronecker table in the entries-only path: tables of 4**5 = 1,024 entries per sample cost
# little to build, and 9 wires then take two gathers and one product per read entry. Measured on
# SQDR-CNN's noisy circuit (B = 16, forward+backward, one busy core): 1 wire per table 20 ms, 3 wires
# 11 ms, 5 wires 10 ms, all 9 (one table as large as ρ) 133 ms.
ENTRY_CHUNK = 5


def needs_uniform(circuit: Circuit) -> bool:
    """Whether any strength of the circuit is drawn at random per evaluation."""
    return any(a.choices > 1 for op in circuit.ops for a in op.params)


def op_superop(op: Op, inputs, weights, uniform, dtype: torch.dtype) -> torch.Tensor:
    """The superoperator of a gate or channel: ``(d², d²)`` shared or ``(B, d², d²)`` per sample."""
    if op.kind == "gate":
        u = op_matrix(op, inputs, weights, dtype)
        return superop_from_kraus(u.unsqueeze(-3))
    if op.matrix is not None:
        return superop_from_kraus(op.matrix.to(device=inputs.device, dtype=dtype))
    values = [angle_value(a, inputs, weights, uniform) for a in op.params]
    return channel_spec(op.name).superop(*values).to(dtype)


def _op_signature(op: Op) -> tuple:
    """What ops on different wires must share to be evaluated as one stacked op."""
    if op.matrix is not None:
        return (op.kind, op.name, id(op))
    return (op.kind, op.name, tuple((a.source, a.transform, a.choices) for a in op.params))


def _stacked_superop(ops: tuple[Op, ...], inputs, weights, uniform, dtype) -> torch.Tensor:
    """The superoperators of G single-wire ops of one signature: ``(G, 4, 4)`` or ``(B, G, 4, 4)``."""
    op = ops[0]
    if op.matrix is not None:  # a user matrix: its signature is unique, G = 1
        return op_superop(op, inputs, weights, uniform, dtype).unsqueeze(-3)
    values = [angle_value([o.params[k] for o in ops], inputs, weights, uniform) for k in range(len(op.params))]
    if op.kind == "channel":
        return channel_spec(op.name).superop(*values).to(dtype)
    spec = gate_spec(op.name)
    if spec.n_params == 0:
        u = spec.matrix(dtype=dtype, device=inputs.device).expand(len(ops), 2, 2)
    else:
        u = spec.matrix(*values).to(dtype)  # (..., G, 2, 2)
    return superop_from_kraus(u.unsqueeze(-3))


class _WireGroup:
    """Wires whose single-qubit op runs share one structure: ``columns[k]`` is the k-th op of each wire."""

    def __init__(self, wires: list[int], runs: list[list[Op]]):
        self.wires = tuple(wires)
        self.columns = [tuple(run[k] for run in runs) for k in range(len(runs[0]))]

    def superop(self, inputs, weights, uniform, dtype) -> torch.Tensor | None:
        """The fused superoperator of each wire's run, ``(..., G, 4, 4)`` (None for empty runs)."""
        fused = None
        for column in self.columns:
            s = _stacked_superop(column, inputs, weights, uniform, dtype)
            fused = s if fused is None else s @ fused
        return fused


def _group_wires(runs: dict[int, list[Op]]) -> list[_WireGroup]:
    """Group the wires of ``{wire: ops}`` by the signature of their op runs (first-seen order)."""
    groups: dict[tuple, list[int]] = {}
    for w, ops in runs.items():
        groups.setdefault(tuple(_op_signature(op) for op in ops), []).append(w)
    return [_WireGroup(wires, [runs[w] for w in wires]) for wires in groups.values()]


def _wire_superops(groups: list[_WireGroup], inputs, weights, uniform, dtype) -> dict[int, torch.Tensor | None]:
    """``{wire: fused superoperator (4, 4) or (B, 4, 4)}`` (None where the run is empty)."""
    out: dict[int, torch.Tensor | None] = {}
    for group in groups:
        fused = group.superop(inputs, weights, uniform, dtype)
        for g, w in enumerate(group.wires):
            out[w] = None if fused is None else fused[..., g, :, :]
    return out


def _diagonal_on_register(op: Op, inputs, weights, dtype, n_qubits: int) -> torch.Tensor:
    """A diagonal gate's diagonal over the whole register: ``(2**n,)`` or ``(B, 2**n)``."""
    local = torch.diagonal(op_matrix(op, inputs, weights, dtype), dim1=-2, dim2=-1)  # (..., 2**k)
    idx = torch.arange(2**n_qubits, device=inputs.device)
    code = torch.zeros_like(idx)
    for w in op.wires:
        code = code * 2 + ((idx >> (n_qubits - 1 - w)) & 1)
    return local[..., code]


class _Layout:
    """Index maps of the interleaved, rotated layout of ρ for one register size.

    ρ is kept flat ``(B, 4**n)`` with each wire's (row bit, column bit) pair adjacent, pairs ordered
    (o, o+1, ..., n-1, 0, ..., o-1) for a rotation offset o. A single-wire superoperator on the leading
    pair is then one batched GEMM whose transposed output is the layout rotated by one pair, so a run
    of single-wire stages costs one GEMM each and no copies.
    """

    def __init__(self, n_qubits: int):
        self.n = n_qubits
        self._maps: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def rows_cols(self, offset: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """For every layout position, its standard row index and column index: two ``(4**n,)``."""
        key = (offset, str(device))
        if key not in self._maps:
            n = self.n
            pos = torch.arange(4**n, device=device)
            rows, cols = torch.zeros_like(pos), torch.zeros_like(pos)
            for q in range(n):
                w = (offset + q) % n
                shift = 2 * (n - 1 - q)
                rows |= ((pos >> (shift + 1)) & 1) << (n - 1 - w)
                cols |= ((pos >> shift) & 1) << (n - 1 - w)
            self._maps[key] = (rows, cols)
        return self._maps[key]

    def positions(self, offset: int, device) -> torch.Tensor:
        """``(2**n, 2**n)``: the layout position of ρ[i, j]."""
        rows, cols = self.rows_cols(offset, device)
        dim = 2**self.n
        out = torch.empty(dim * dim, dtype=torch.long, device=device)
        out[rows * dim + cols] = torch.arange(dim * dim, device=device)
        return out.reshape(dim, dim)


class DensityPlan:
    """A noisy circuit compiled into product, local-superoperator, diagonal, permutation and dense stages.

    ``execute(inputs (B, n_in), weights (n_w,), complex dtype, uniform=None, generator=None)`` returns
    the measurements ``(B, n_outputs)``; :meth:`density_matrix` returns ρ ``(B, 2**n, 2**n)``.
    """

    checks_finite = False

    def __init__(self, circuit: Circuit):
        self.circuit, self.n_qubits = circuit, circuit.n_qubits
        n = self.n_qubits
        self.layout = _Layout(n)
        self.readout = [op for op in circuit.ops if op.kind == "readout"]
        ops = [op for op in circuit.ops if op.kind != "readout"]
        self.random = needs_uniform(circuit)
        self.product: list[list[Op]] = [[] for _ in range(n)]
        start = 0
        while start < len(ops) and len(ops[start].wires) == 1:
            self.product[ops[start].wires[0]].append(ops[start])
            start += 1
        self.stages: list[tuple] = []
        pending: list[list[Op]] = [[] for _ in range(n)]
        for op in ops[start:]:
            if len(op.wires) == 1:
                pending[op.wires[0]].append(op)
                continue
            for w in op.wires:
                if pending[w]:
                    self.stages.append(("local", w, pending[w]))
                    pending[w] = []
            self._add_multi(op)
        self.stages += [("local", w, pending[w]) for w in range(n) if pending[w]]
        # Heisenberg picture for expval-only circuits: the single-wire ops after the last multi-wire
        # op act on the observables (2x2 each) instead of on ρ.
        self.tails: dict[int, list[Op]] = {}
        self._reduced_cache: dict[tuple, torch.Tensor] = {}
        if all(m.kind == "expval" for m in circuit.measurements):
            while self.stages and self.stages[-1][0] == "local":
                _, w, tail_ops = self.stages.pop()
                self.tails[w] = tail_ops
        self.product_groups = _group_wires(dict(enumerate(self.product)))
        self.tail_groups = _group_wires(self.tails)
        # ρ need not be formed when only phases and permutations follow the product state
        self.entries_only = all(stage[0] in ("diag", "perm") for stage in self.stages)
        self._perm_cache: dict[tuple, torch.Tensor] = {}
        self._entry_cache: dict[tuple, tuple] = {}

    def _add_multi(self, op: Op) -> None:
        spec = gate_spec(op.name) if op.kind == "gate" and op.matrix is None else None
        kind = {GateKind.DIAGONAL: "diag", GateKind.PERMUTATION: "perm"}.get(spec.kind, "dense") if spec else "dense"
        if kind != "dense" and self.stages and self.stages[-1][0] == kind:
            self.stages[-1][1].append(op)
        else:
            self.stages.append((kind, [op]) if kind != "dense" else ("dense", op))

    # -- evolution -------------------------------------------------------------------------------
    def _factors(self, inputs, weights, uniform, dtype) -> torch.Tensor:
        """vec(ρ_w) of every wire after the leading single-qubit ops: ``(1 or B, n, 4)``."""
        zero = torch.tensor([1, 0, 0, 0], dtype=dtype, device=inputs.device)
        superops = _wire_superops(self.product_groups, inputs, weights, uniform, dtype)
        parts = [zero[None] if s is None else s[..., :, 0].reshape(-1, 4)
                 for s in (superops[w] for w in range(self.n_qubits))]
        batch = max(p.shape[0] for p in parts)
        return torch.stack([p.expand(batch, 4) for p in parts], dim=1)  # (1 or B, n, 4)

    @staticmethod
    def _kron(factors: torch.Tensor) -> torch.Tensor:
        """The Kronecker product of ``(1 or B, k, 4)`` per-wire factors: ``(1 or B, 4**k)``, first wire leading."""
        acc = factors[:, 0]
        for w in range(1, factors.shape[1]):
            acc = (acc[:, :, None] * factors[:, w, None, :]).reshape(acc.shape[0], -1)
        return acc

    def _product_state(self, factors: torch.Tensor, batch: int) -> torch.Tensor:
        """ρ of the leading single-qubit ops as a Kronecker product of per-wire factors (offset 0)."""
        acc = self._kron(factors)
        return acc.expand(batch, -1) if acc.shape[0] != batch else acc

    def _diagonal(self, stage, inputs, weights, dtype) -> torch.Tensor:
        """The phase diagonal of a run of diagonal gates over the register: ``(2**n,)`` or ``(B, 2**n)``."""
        d = _diagonal_on_register(stage[1][0], inputs, weights, dtype, self.n_qubits)
        for op in stage[1][1:]:
            d = d * _diagonal_on_register(op, inputs, weights, dtype, self.n_qubits)
        return d

    def _permutation(self, stage, device) -> torch.Tensor:
        """The basis permutation of a run of permutation gates: ``(2**n,)``, ρ'[i, j] = ρ[perm i, perm j]."""
        key = (id(stage), str(device))
        if key not in self._perm_cache:
            perm = torch.arange(2**self.n_qubits, device=device)
            for op in stage[1]:
                perm = perm[wire_permutation(list(perm_table(op.name)), op.wires, self.n_qubits).to(device)]
            self._perm_cache[key] = perm
        return self._perm_cache[key]

    def _entry_plan(self, key, positions: torch.Tensor) -> tuple:
        """Index tables for :meth:`_entries` at layout positions (offset 0), cached under ``key``:
        the (row, column) indices each diagonal stage is read at, and each wire chunk's table index."""
        key = (key, str(positions.device))
        if key not in self._entry_cache:
            n, device = self.n_qubits, positions.device
            rows, cols = self.layout.rows_cols(0, device)
            i, j = rows[positions], cols[positions]
            reads = {}
            for k in reversed(range(len(self.stages))):
                if self.stages[k][0] == "diag":
                    reads[k] = (i, j)
                else:
                    perm = self._permutation(self.stages[k], device)
                    i, j = perm[i], perm[j]
            codes = []
            for start in range(0, n, ENTRY_CHUNK):
                code = torch.zeros_like(i)
                for w in range(start, min(start + ENTRY_CHUNK, n)):
                    code = 4 * code + 2 * ((i >> (n - 1 - w)) & 1) + ((j >> (n - 1 - w)) & 1)
                codes.append(code)
            self._entry_cache[key] = (reads, codes)
        return self._entry_cache[key]

    def _entries(self, factors, inputs, weights, dtype, key, positions) -> torch.Tensor:
        """ρ at layout ``positions`` (offset 0) without forming ρ: ``(B, P)``. Walking the stages
        backwards, ρ'[i, j] = ρ[perm i, perm j] for a permutation and ρ'[i, j] = d_i conj(d_j) ρ[i, j]
        for a diagonal; the product state's entry is the product of the wires' factor entries, read
        from the Kronecker tables of chunks of ``ENTRY_CHUNK`` wires."""
        reads, codes = self._entry_plan(key, positions)
        parts = [self._kron(factors[:, chunk * ENTRY_CHUNK:(chunk + 1) * ENTRY_CHUNK]).index_select(1, code)
                 for chunk, code in enumerate(codes)]  # (1 or B, P) each, from (1 or B, 4**k) tables
        value = parts[0]
        for part in parts[1:]:
            value = value * part
        for k in sorted(reads):
            i, j = reads[k]
            d = self._diagonal(self.stages[k], inputs, weights, dtype)
            value = value * (d[..., i] * d.conj()[..., j])
        return value.expand(inputs.shape[0], -1)

    def _rotate(self, rho: torch.Tensor, pairs: int) -> torch.Tensor:
        """Move the leading ``pairs`` wire pairs to the end of the layout (one transpose copy)."""
        batch = rho.shape[0]
        return rho.reshape(batch, 4**pairs, -1).transpose(1, 2).reshape(batch, -1)

    def _local(self, rho, superop, wire: int, offset: int) -> tuple[torch.Tensor, int]:
        n, batch = self.n_qubits, rho.shape[0]
        if (wire - offset) % n:
            rho = self._rotate(rho, (wire - offset) % n)
        s = superop.expand(batch, 4, 4) if superop.dim() == 2 else superop
        # (B, R, 4) = (B, 4, R)^T (B, 4, 4)^T: the wire's pair moves to the end, offset advances by one.
        rho = torch.bmm(rho.reshape(batch, 4, -1).transpose(1, 2), s.transpose(1, 2)).reshape(batch, -1)
        return rho, (wire + 1) % n

    def evolve(self, inputs, weights, dtype, uniform=None) -> tuple[torch.Tensor, int]:
        """ρ after every gate and channel (readout errors excluded) in the layout of :class:`_Layout`.

        Returns:
            ``(ρ (B, 4**n), offset)``.
        """
        n, batch, device = self.n_qubits, inputs.shape[0], inputs.device
        dim = 2**n
        check_memory(dim * dim, batch, dtype, device, copies=3, what="density matrix")
        rho, offset = self._product_state(self._factors(inputs, weights, uniform, dtype), batch), 0
        for stage in self.stages:
            kind = stage[0]
            if kind == "local":
                _, w, ops = stage
                s = _fuse([op_superop(op, inputs, weights, uniform, dtype) for op in ops])
                rho, offset = self._local(rho, s, w, offset)
            elif kind == "diag":
                d = self._diagonal(stage, inputs, weights, dtype)
                rows, cols = self.layout.rows_cols(offset, device)
                rho = rho * (d[..., rows] * d.conj()[..., cols])
            elif kind == "perm":
                perm = self._permutation(stage, device)
                rows, cols = self.layout.rows_cols(offset, device)
                rho = rho[:, self.layout.positions(offset, device)[perm[rows], perm[cols]]]
            else:
                op = stage[1]
                pos = [(w - offset) % n for w in op.wires]
                wires = tuple(2 * q for q in pos) + tuple(2 * q + 1 for q in pos)
                rho = apply_matrix(rho, op_superop(op, inputs, weights, uniform, dtype), wires, 2 * n)
        return rho, offset

    def _uniform(self, inputs, uniform, generator):
        if not self.random or uniform is not None:
            return uniform
        return torch.rand(inputs.shape[0], generator=generator, dtype=inputs.dtype).to(inputs.device)

    def density_matrix(self, inputs, weights, dtype, uniform=None, generator=None) -> torch.Tensor:
        """ρ ``(B, 2**n, 2**n)`` complex."""
        rho, offset = self.evolve(inputs, weights, dtype, self._uniform(inputs, uniform, generator))
        dim = 2**self.n_qubits
        return rho[:, self.layout.positions(offset, inputs.device)].reshape(-1, dim, dim)

    def execute(self, inputs, weights, dtype, uniform=None, generator=None):
        measurements = self.circuit.measurements
        if len(measurements) == 1 and measurements[0].kind == "state":
            return self.density_matrix(inputs, weights, dtype, uniform, generator)
        uniform = self._uniform(inputs, uniform, generator)
        if self.entries_only:
            # the same limit as forming ρ: the layout's index tables are as large as ρ
            check_memory(4**self.n_qubits, inputs.shape[0], dtype, inputs.device, copies=3, what="density matrix")
            factors, offset = self._factors(inputs, weights, uniform, dtype), 0

            def read(key, positions):  # (B, P)
                return self._entries(factors, inputs, weights, dtype, key, positions)
        else:
            rho, offset = self.evolve(inputs, weights, dtype, uniform)

            def read(key, positions):  # (B, P)
                return rho[:, positions]
        readout = readout_table(self.readout)
        tails = _wire_superops(self.tail_groups, inputs, weights, uniform, dtype)

        def exact(words):
            return self._expvals(read, offset, words, tails, inputs.device)

        def probs():
            return read("probs", torch.diagonal(self.layout.positions(offset, inputs.device))).real  # (B, 2**n)

        return combine_measurements(measurements, readout, exact, probs, self.n_qubits)

    def _reduced_index(self, offset: int, wires: tuple[int, ...], device) -> torch.Tensor:
        """Layout positions of ρ[(a, r), (b, r)] for a, b over ``wires`` and r over the rest:
        ``(2**k, 2**k, 2**(n-k))``."""
        key = (offset, wires, str(device))
        if key not in self._reduced_cache:
            self._reduced_cache[key] = self._build_reduced_index(offset, wires, device)
        return self._reduced_cache[key]

    def _build_reduced_index(self, offset: int, wires: tuple[int, ...], device) -> torch.Tensor:
        n, k = self.n_qubits, len(wires)
        rest = [w for w in range(n) if w not in wires]
        code = torch.arange(2**k, device=device)
        tail = torch.arange(2 ** (n - k), device=device)

        def compose(bits):
            index = torch.zeros(2**k, 2 ** (n - k), dtype=torch.long, device=device)
            for pos, w in enumerate(wires):
                index |= (((bits >> (k - 1 - pos)) & 1) << (n - 1 - w))[:, None]
            for pos, w in enumerate(rest):
                index |= (((tail >> (n - k - 1 - pos)) & 1) << (n - 1 - w))[None, :]
            return index

        index = compose(code)  # (2**k, 2**(n-k))
        return self.layout.positions(offset, device)[index[:, None, :], index[None, :, :]]

    def _expvals(self, read, offset, words, tails, device) -> torch.Tensor:
        """Pauli-word expectations ``(B, len(words))`` from the words' reduced density matrices (one
        ``read(key, positions)`` of ρ's entries)."""
        wires = tuple(tuple(w for _, w in word) for word in words)
        indices = [self._reduced_index(offset, ws, device) for ws in wires]
        values = read(("expvals", wires), torch.cat([i.reshape(-1) for i in indices]))
        out = []
        for word, index, chunk in zip(words, indices, values.split([i.numel() for i in indices], dim=1)):
            reduced = chunk.reshape(-1, *index.shape).sum(dim=-1)  # (B, 2**k, 2**k)
            out.append(self._expval(reduced, word, tails))
        return torch.stack(out, dim=1)

    @staticmethod
    def _expval(reduced, word, tails) -> torch.Tensor:
        """Tr(P ρ) = Σ_{k,l} ρ_W[k, l] Π_w v_w[k_w, l_w] with v_w = S_w^T vec(σ_w^T) (S_w: wire w's tail)."""
        k = len(word)
        tensor = reduced.reshape((reduced.shape[0],) + (2,) * (2 * k))
        letters = "abcdefghijklmnopqrstuvwxyz"
        operands, subscripts = [tensor], ["Z" + letters[: 2 * k]]
        for pos, (letter, w) in enumerate(word):
            v = _PAULI_VEC[letter].to(device=reduced.device, dtype=reduced.dtype)
            if w in tails:
                v = (tails[w].transpose(-1, -2) @ v[:, None])[..., 0]  # (..., 4)
            operands.append(v.reshape(*v.shape[:-1], 2, 2))
            subscripts.append(("Z" if v.dim() == 2 else "") + letters[pos] + letters[k + pos])
        return torch.einsum(",".join(subscripts) + "->Z", *operands).real


def _fuse(superops: list[torch.Tensor]) -> torch.Tensor:
    """The superoperator of ops applied in order (first = earliest)."""
    out = superops[0]
    for s in superops[1:]:
        out = s @ out
    return out


# vec(σ^T) of each Pauli, index (k, l) -> 2k + l, so that Tr(σ ρ) = Σ vec(σ^T)[(k, l)] ρ[k, l].
_PAULI_VEC = {
    "X": torch.tensor([0, 1, 1, 0], dtype=torch.complex128),
    "Y": torch.tensor([0, 1j, -1j, 0], dtype=torch.complex128),
    "Z": torch.tensor([1, 0, 0, -1], dtype=torch.complex128),
}


# -- measurements on ρ ---------------------------------------------------------------------------
def readout_table(ops) -> dict[int, tuple[float, float]]:
    """Readout flip probabilities by wire, ``{wire: (p0to1, p1to0)}`` (later ops on a wire compose)."""
    table: dict[int, tuple[float, float]] = {}
    for op in ops:
        a, b = op.params[0].scale, op.params[1].scale
        a0, b0 = table.get(op.wires[0], (0.0, 0.0))
        # two flips in a row: 0 -> 1 if exactly one of them fires starting from 0, likewise for 1.
        table[op.wires[0]] = (a0 * (1 - b) + (1 - a0) * a, b0 * (1 - a) + (1 - b0) * b)
    return table


def apply_readout(values_fn, word, table) -> torch.Tensor:
    """⟨word⟩ under readout flips: Σ_S Π_{w∉S} α_w Π_{w∈S} β_w ⟨P_S⟩ with α = p10 - p01, β = 1 - p01 - p10.

    ``values_fn(subwords) -> (B, len(subwords))`` evaluates exact expectations of sub-words.
    """
    noisy = [(p, w) for p, w in word if w in table]
    clean = tuple((p, w) for p, w in word if w not in table)
    subsets, coefs = [], []
    for mask in range(2 ** len(noisy)):
        kept, coef = list(clean), 1.0
        for k, (p, w) in enumerate(noisy):
            a, b = table[w]
            if mask >> k & 1:
                kept.append((p, w))
                coef *= 1 - a - b
            else:
                coef *= b - a
        subsets.append(tuple(kept))
        coefs.append(coef)
    nonempty = [k for k, s in enumerate(subsets) if s]  # every subset but the empty one: the word has a noisy wire
    values = values_fn([subsets[k] for k in nonempty])  # (B, len(nonempty))
    weights = torch.tensor([coefs[k] for k in nonempty], dtype=values.dtype, device=values.device)
    return values @ weights + sum(coefs[k] for k, s in enumerate(subsets) if not s)


def combine_measurements(measurements, readout: dict, expvals_fn, probs_fn, n_qubits: int) -> torch.Tensor:
    """Expvals and probs of a circuit, with readout flips, concatenated: ``(B, n_outputs)``.

    Args:
        measurements: the circuit's measurements (no ``state``).
        readout: ``{wire: (p0to1, p1to0)}``.
        expvals_fn: ``words -> (B, len(words))`` exact Pauli-word expectations.
        probs_fn: ``() -> (B, 2**n)`` the computational-basis probabilities (called at most once).
    """
    clean = [m.paulis for m in measurements if m.kind == "expval" and not any(w in readout for w in m.wires)]
    clean_values = dict(zip(clean, expvals_fn(clean).unbind(1))) if clean else {}
    parts, probs = [], None
    for m in measurements:
        if m.kind == "expval":
            value = clean_values[m.paulis] if m.paulis in clean_values else apply_readout(expvals_fn, m.paulis, readout)
            parts.append(value[:, None])
        elif m.kind == "probs":
            probs = probs_fn() if probs is None else probs
            parts.append(readout_probs(marginal_probabilities(probs, m.wires, n_qubits), m.wires, readout))
        else:
            raise ShapeError("state() must be the circuit's only measurement")
    return torch.cat(parts, dim=1)


def readout_probs(marginal: torch.Tensor, wires, readout: dict) -> torch.Tensor:
    """Marginal probabilities ``(B, 2**k)`` of ``wires`` after classical readout flips ``{wire: (p01, p10)}``."""
    for pos, w in enumerate(wires):
        if w in readout:
            a, b = readout[w]
            confusion = torch.tensor([[1 - a, b], [a, 1 - b]], dtype=marginal.dtype, device=marginal.device)
            marginal = apply_matrix(marginal, confusion, (pos,), len(wires))
    return marginal
