"""Choice of the flood kernel backend: the Numba CPU cores or the Numba CUDA kernels.

See docs/gpu.md. ``numba.cuda`` is imported only here, inside the function,
so that importing :mod:`emtwin.kernels` does not load the CUDA driver.
"""

from __future__ import annotations

import logging
import os

from emtwin.errors import KernelError

__all__ = ["BACKENDS", "cuda_available", "select_backend", "simulator_enabled"]

log = logging.getLogger(__name__)

#: Backend names a scenario or the command line may give.
BACKENDS = ("auto", "cpu", "cuda")
_noticed: set[str] = set()  # the fallback notices already logged in this process


def _notice(msg: str) -> None:
    if msg not in _noticed:
        _noticed.add(msg)
        log.warning(msg)


def simulator_enabled() -> bool:
    """True when ``NUMBA_ENABLE_CUDASIM`` asks Numba for its CUDA simulator."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cuda_available() -> bool:
    """True when Numba can run CUDA kernels here: a usable GPU, or the CUDA simulator.

    The simulator (``NUMBA_ENABLE_CUDASIM=1`` set before ``numba.cuda`` is
    first imported) runs every thread in Python: correct, slow, for tests.
    """
    try:
        from numba import cuda
    except Exception:  # noqa: BLE001 - a broken CUDA install means no CUDA
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def select_backend(name: str) -> str:
    """The backend to run the flood on for the requested *name*: "cpu" or "cuda".

    ``"auto"``: CUDA when a real GPU is found, else the CPU, with a one-line
    warning in the log, once per process (never the simulator: it interprets
    every thread in Python, far too slow for a real grid). ``"cuda"``: CUDA,
    or :class:`KernelError` when there is neither a GPU nor the simulator.
    ``"cpu"``: the CPU.
    """
    if name not in BACKENDS:
        raise KernelError(f"flood backend must be one of {BACKENDS}, got {name!r}")
    if name == "cpu":
        return "cpu"
    if name == "auto" and simulator_enabled():
        _notice("flood backend 'auto': the CUDA simulator is never chosen automatically "
                "(NUMBA_ENABLE_CUDASIM is set), running the flood on the CPU")
        return "cpu"
    ok = cuda_available()
    if name == "cuda":
        if not ok:
            raise KernelError(
                "flood backend 'cuda' was requested, but Numba finds no usable CUDA GPU "
                "(driver, device and CUDA libraries); use backend 'cpu' or 'auto', or set "
                "NUMBA_ENABLE_CUDASIM=1 to run the (slow) CUDA simulator"
            )
        return "cuda"
    if ok:
        return "cuda"
    _notice("flood backend 'auto': no CUDA GPU found, running the flood on the CPU")
    return "cpu"
