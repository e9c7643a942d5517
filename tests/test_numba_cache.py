"""The kernels' Numba cache is keyed by their sources (emtwin/kernels/_numba_cache.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numba

from emtwin.kernels import _flood_lts
from emtwin.kernels import _numba_cache as nc


def test_the_cache_folder_is_named_by_the_sources():
    """Importing the kernels points Numba at numba-<key> (key from the sources as they
    are), and the local-stepping core, which inlines functions of _flood_numba.py, is
    cached there: a change to _flood_numba.py alone gives it a fresh folder."""
    key = nc.source_key()
    assert len(key) == 12 and Path(numba.config.CACHE_DIR).name == f"numba-{key}"
    assert f"numba-{key}" in str(_flood_lts.macro._cache._cache_path)


def test_the_key_follows_every_kernel_source(tmp_path):
    """The key changes with one byte of any kernel source (here the global step's,
    which local stepping inlines) and with a new source file, not with other files."""
    for p in nc.HERE.glob("*.py"):
        shutil.copy(p, tmp_path / p.name)
    key = nc.source_key(tmp_path)
    assert key == nc.source_key(nc.HERE)
    (tmp_path / "notes.txt").write_text("not a source")
    assert nc.source_key(tmp_path) == key
    src = tmp_path / "_flood_numba.py"
    src.write_bytes(src.read_bytes() + b"\n# one more line\n")
    changed = nc.source_key(tmp_path)
    assert changed != key
    (tmp_path / "_extra.py").write_text("X = 1\n")
    assert nc.source_key(tmp_path) not in (key, changed)


def test_numba_cache_dir_is_the_base_where_set(tmp_path, monkeypatch):
    """With NUMBA_CACHE_DIR set, the keyed folder goes under it."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)
    d = nc.use_keyed_cache()
    assert d == tmp_path / f"numba-{nc.source_key()}" and d.is_dir()
    assert str(d) == numba.config.CACHE_DIR
