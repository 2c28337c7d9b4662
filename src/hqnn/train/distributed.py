"""Scaling out on PyTorch's own machinery: ``torch.distributed`` under ``torchrun``, and a process
pool for studies of many independent trainings.

Under ``torchrun`` (any ``--nnodes`` / ``--nproc-per-node``) :func:`init_distributed` starts the
process group from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``): gloo on the CPU, NCCL on CUDA. The trainer then wraps its model
in :class:`~torch.nn.parallel.DistributedDataParallel` (:func:`wrap_model`), each rank trains on
its share of every global batch (:class:`~hqnn.train.loaders.RankBatches`), validation and test
items are split over the ranks and gathered back (:func:`gather_split`), and only rank 0
(:attr:`DistContext.is_main`) writes files. Without torchrun everything here is a no-op with a
world of one.

:func:`run_in_workers` runs independent tasks (a study's (seed, arm) trainings) in a pool of
spawned processes on one machine; :func:`shard` picks one machine's share of a task list.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import distributed as dist
from torch import nn

from hqnn.exceptions import ConfigError

__all__ = [
    "DistContext",
    "launched",
    "context",
    "init_distributed",
    "barrier",
    "main_first",
    "broadcast_object",
    "all_gather_objects",
    "all_reduce_sum",
    "gather_split",
    "wrap_model",
    "shard",
    "worker_threads",
    "run_in_workers",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job: ``rank`` of ``world_size`` (``local_rank`` on its machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run directory, checkpoints and logs."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(
            f"environment variable {name} must be an integer (as torchrun sets it); got {value!r}"
        ) from None


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher) in a world of more than one."""
    return _env_int("WORLD_SIZE", 1) > 1


def context() -> DistContext:
    """The current process's place: from the initialised process group, else a world of one."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    return DistContext()


def init_distributed(device: torch.device) -> DistContext:
    """Start the process group from torchrun's environment (once; later calls return the context).

    Args:
        device: where the model trains; ``cuda`` selects NCCL (and this rank's ``LOCAL_RANK`` GPU),
            anything else gloo.

    Returns:
        The :class:`DistContext`; a world of one when the process was not launched by torchrun.

    Raises:
        ConfigError: launched in a world of more than one but ``torch.distributed`` is unavailable.
    """
    if not launched():
        return context()
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run in one process")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(_env_int("LOCAL_RANK", 0))
        dist.init_process_group(backend=backend)
        if dist.get_rank():  # rank 0 logs the run; the others only their warnings and errors
            logging.getLogger("hqnn").setLevel(logging.WARNING)
        log.info("torch.distributed: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return context()


def barrier() -> None:
    """Wait for every rank (no-op in a world of one)."""
    if context().enabled:
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first, the others after it (e.g. rank 0 writes split files that the
    others then read instead of writing them at the same time); a plain block in a world of one."""
    main = context().is_main
    if not main:
        barrier()
    yield
    if main:
        barrier()


def broadcast_object(value: T, src: int = 0) -> T:
    """``value`` as rank ``src`` has it, on every rank (any picklable object)."""
    if not context().enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    ctx = context()
    if not ctx.enabled:
        return [value]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks (a new tensor; ``tensor`` itself is left alone)."""
    total = tensor.clone()
    if context().enabled:
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def gather_split(labels: torch.Tensor, logits: torch.Tensor, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Put a split's per-rank inference results back together, in the split's order.

    Rank ``r`` evaluated items ``r, r + W, r + 2W, ...`` (W ranks, as
    :func:`~hqnn.train.loaders.make_loader` shards evaluation), so item ``i`` is row ``i // W`` of
    rank ``i % W``.

    Args:
        labels: (n_r,) this rank's labels.
        logits: (n_r, n_classes) this rank's logits (on the CPU).
        n_items: items in the whole split.

    Returns:
        ``(labels (n_items,), logits (n_items, n_classes))``, the same on every rank, equal to what
        one process evaluating the whole split returns.
    """
    ctx = context()
    if not ctx.enabled:
        return labels, logits
    parts = all_gather_objects((labels, logits))
    width = max(part[1].shape[1] if part[1].ndim == 2 else 0 for part in parts)
    all_labels = torch.zeros(n_items, dtype=torch.int64)
    all_logits = torch.zeros(n_items, width)
    for rank, (part_labels, part_logits) in enumerate(parts):
        if part_labels.numel():
            all_labels[rank::ctx.world_size] = part_labels
            all_logits[rank::ctx.world_size] = part_logits
    return all_labels, all_logits


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` when several ranks train,
    else ``model`` itself. DDP broadcasts rank 0's parameters and buffers at construction and
    averages every gradient (circuit weights included: they are ordinary Parameters) over the
    ranks after each backward pass."""
    if not context().enabled:
        return model
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Shard ``index`` of ``count`` (0-based): items ``index, index + count, ...``; the shards of
    ``0 .. count - 1`` together hold every item exactly once.

    Raises:
        ConfigError: ``count < 1`` or ``index`` outside ``0 .. count - 1``.
    """
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"shard must be INDEX/COUNT with 0 <= INDEX < COUNT; got {index}/{count}")
    return list(items[index::count])


def worker_threads(workers: int, cores: int | None = None) -> int:
    """Torch threads per worker when ``workers`` share the machine: ``cores // workers``, at least 1."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(workers, 1))


def _start_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def run_in_workers(
    function: Callable[..., T], tasks: Sequence[tuple], workers: int, threads_per_worker: int | None = None
) -> list[T]:
    """``[function(*task) for task in tasks]``, computed by ``workers`` spawned processes.

    Each worker starts fresh (the ``spawn`` context: nothing of this process's threads or torch
    state is inherited) with ``threads_per_worker`` torch threads (default
    :func:`worker_threads`). A task that seeds itself (as every :class:`~hqnn.train.trainer.Trainer`
    does) gives the numbers it gives when run alone; they are bitwise the same as a sequential run
    when the thread count does not enter them (``train.threads`` set, as the presets do).

    Args:
        function: a module-level (picklable) function.
        tasks: argument tuples, one per call; they and the results must pickle.
        workers: processes; 1 runs the tasks here, one after another.
        threads_per_worker: torch threads in each worker.

    Returns:
        The results in the order of ``tasks``.

    Raises:
        ConfigError: ``workers < 1``, or a task or ``function`` that cannot be sent to a worker.
        Exception: the first failing task's own error, re-raised here.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1; got {workers}")
    if workers == 1 or len(tasks) <= 1:
        return [function(*task) for task in tasks]
    threads = threads_per_worker or worker_threads(workers)
    try:
        pickle.dumps((function, list(tasks)))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ConfigError(f"run_in_workers needs a module-level function and picklable tasks: {exc}") from exc
    spawn = torch.multiprocessing.get_context("spawn")
    log.info("%d task(s) on %d worker process(es), %d thread(s) each", len(tasks), workers, threads)
    pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=spawn, initializer=_start_worker,
                               initargs=(threads,))
    with pool:
        futures = [pool.submit(function, *task) for task in tasks]
        return [future.result() for future in futures]
