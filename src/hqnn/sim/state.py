"""Initial states and the memory check that runs before a large register is allocated."""

from __future__ import annotations

import torch

from hqnn.exceptions import ResourceError

__all__ = ["zero_state", "check_memory", "available_memory"]


def available_memory(device: torch.device) -> int:
    """Bytes free for new tensors on ``device`` (CUDA: free device memory; CPU: MemAvailable)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - non-Linux
        pass
    return 1 << 62


_ALWAYS_FITS = 64 * 2**20  # requests below this are not worth a look at the free memory (a file read)


def check_memory(n_amplitudes: int, batch: int, dtype: torch.dtype, device: torch.device, copies: int = 3,
                 what: str = "statevector") -> None:
    """Raise ResourceError before allocating if ``copies`` arrays of ``batch * n_amplitudes`` won't fit.

    ``copies`` counts the working arrays a simulation keeps alive at once (state, a gate's output, a
    measurement buffer); the message gives the bytes needed and the bytes available.
    """
    itemsize = dtype.itemsize
    need = copies * batch * n_amplitudes * itemsize
    if need < _ALWAYS_FITS:
        return
    free = available_memory(device)
    if need > free:
        hint = "a smaller batch, fewer qubits" + (" or complex64" if dtype == torch.complex128 else "")
        raise ResourceError(
            f"{what} of {n_amplitudes} amplitudes x batch {batch} ({dtype}) needs about {need / 2**30:.2f} GiB "
            f"({copies} working copies); only {free / 2**30:.2f} GiB is available on {device}. Use {hint}."
        )


def zero_state(n_qubits: int, batch: int, dtype=torch.complex64, device=None) -> torch.Tensor:
    """``|0...0>`` for a batch: ``(B, 2**n)``."""
    device = torch.device("cpu") if device is None else torch.device(device)
    check_memory(2**n_qubits, batch, dtype, device)
    state = torch.zeros(batch, 2**n_qubits, dtype=dtype, device=device)
    state[:, 0] = 1
    return state
