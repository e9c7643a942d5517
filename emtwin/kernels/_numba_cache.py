"""Numba's on-disk cache of the kernels, kept apart for each version of their sources.

Numba takes a cached function as current while *its own* source file is unchanged
(its modification time and size); it does not look at the files of the functions it
inlines or calls. The local stepping cores (``_flood_lts.py``) inline the row loops and
records of the global step (``_flood_numba.py``), ``cell_speed.py`` reads its
constants, and the CUDA kernels compile the same Python sources: after a change to
``_flood_numba.py`` alone, the cached local-stepping cores kept the old code (found
2026-12-07, when the speed records gained a limit that local stepping's cached core
did not apply until its cache was removed).

So the cache lives in a folder named by a hash of all the kernels' sources
(``numba-<12 hex digits>``): any change to any of them starts a fresh folder, and a
version never loads another's machine code. The folder is under ``NUMBA_CACHE_DIR``
where that is set, else under this package's ``__pycache__`` (a development checkout),
else, where that cannot be written (an installed package), under the user's cache
folder (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``emtwin``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

__all__ = ["source_key", "use_keyed_cache"]

HERE = Path(__file__).resolve().parent


def source_key(folder: Path = HERE) -> str:
    """12 hex digits of the SHA-256 of every ``*.py`` file in *folder* (names and
    contents, in name order)."""
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.py")):
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _writable(d: Path) -> bool:
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        return False
    return True


def use_keyed_cache() -> Path:
    """Point Numba's cache at the folder of this version of the sources (see the module
    docstring) and return it. Must run before the kernel modules are imported: Numba
    reads the setting when a ``cache=True`` function is defined."""
    name = f"numba-{source_key()}"
    env = os.environ.get("NUMBA_CACHE_DIR")
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    bases = [Path(env)] if env else [HERE / "__pycache__", Path(xdg) / "emtwin"]
    for base in bases:
        d = base / name
        if _writable(d):
            numba.config.CACHE_DIR = str(d)
            return d
    return Path(numba.config.CACHE_DIR or "")  # (nothing writable: Numba's own choice)
