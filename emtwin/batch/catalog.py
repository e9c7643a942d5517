"""The batch catalog: a SQLite file in the batch folder listing every run and its state.

One row per (plan, run): its seed, its sampled values, its state (``pending``,
``running``, ``done``, ``failed``), its metrics (JSON) or its error. Every finished
run is committed at once, so an interrupted batch loses nothing that had finished,
and running the same command again skips what is done. The catalog remembers the
fingerprint of each plan (a hash of its merged scenario, and for Latin hypercube draws
the number of runs) and refuses to carry on a plan that differs from the one of the
same label in the folder; new plans and (Monte Carlo) new runs are added to it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emtwin.errors import EmtwinError

__all__ = ["Catalog", "CatalogError", "RunRow", "CATALOG_NAME", "MAX_CRASHES"]

#: The catalog's file name inside the batch folder.
CATALOG_NAME = "catalog.sqlite"
#: A run whose worker died this many times is marked failed instead of tried again.
MAX_CRASHES = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plans (
    label TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    describe TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    plan TEXT NOT NULL,
    run INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    metrics TEXT,
    error TEXT,
    warnings TEXT,
    wall_s REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    finished_at REAL,
    PRIMARY KEY (plan, run)
);
"""


class CatalogError(EmtwinError, ValueError):
    """The batch folder holds a catalog of a different batch, or one that cannot be read."""


@dataclass
class RunRow:
    """One run as the catalog holds it (metrics as a flat dict of numbers)."""

    plan: str
    run: int
    seed: int
    params: dict[str, Any]
    status: str
    metrics: dict[str, float] | None
    error: str | None
    warnings: list[str]
    wall_s: float | None
    attempts: int
    crashes: int


def _json(x: Any) -> str:
    """Compact JSON with NaN/inf as null (SQLite text stays standard JSON)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(w) for k, w in v.items()}
        if isinstance(v, list | tuple):
            return [clean(w) for w in v]
        return v

    return json.dumps(clean(x), separators=(",", ":"), allow_nan=False)


def _lock(folder: Path) -> Any:
    """Hold an exclusive lock on the folder, so that two batches never share it."""
    f = open(folder / ".catalog.lock", "w")  # noqa: SIM115 - held until Catalog.close
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        return f
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise CatalogError(f"{folder}: another emtwin batch is running in this folder") from None
    return f


_REFUSED = ("A batch folder carries on only the same scenario and plans (and, with "
            "`method: lhs`, whose draws depend on the number of runs, the same --runs): "
            "choose another --out folder, or delete this one")


class Catalog:
    """The SQLite catalog of one batch folder.

    Parameters
    ----------
    folder
        The batch folder (created if missing).
    plans
        Each plan's label and fingerprint (the hash of what it runs).
    describe
        A short human description of each plan, shown when a folder is refused.
    legacy
        The fingerprint a catalog written before per-plan fingerprints would hold for
        this batch: such a catalog is carried on when it matches.

    Raises
    ------
    CatalogError
        When the folder holds a plan of the same label with another fingerprint.
    """

    def __init__(self, folder: str | Path, *, plans: Mapping[str, str],
                 describe: Mapping[str, str], legacy: str | None = None) -> None:  # fmt: skip
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / CATALOG_NAME
        self._lock = _lock(self.folder)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self.db.executescript(_SCHEMA)
            old = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
            have = {lab: (fp, d) for lab, fp, d in
                    self.db.execute("SELECT label, fingerprint, describe FROM plans")}  # fmt: skip
        except sqlite3.DatabaseError as exc:
            self._lock.close()
            raise CatalogError(f"{self.path}: cannot read the batch catalog ({exc})") from None
        if not have and old.get("fingerprint"):  # a catalog of one fingerprint for the batch
            if old["fingerprint"] != legacy:
                self.close()
                raise CatalogError(f"{self.folder} holds another batch ({old.get('describe')}); "
                                   f"this one is {'; '.join(describe.values())}. {_REFUSED}")
            have = {lab: (fp, describe[lab]) for lab, fp in plans.items()}
            with self._tx():
                self.db.executemany("INSERT INTO plans VALUES (?, ?, ?)",
                                    [(lab, fp, d) for lab, (fp, d) in have.items()])  # fmt: skip
        for lab, fp in plans.items():
            if lab in have and have[lab][0] != fp:
                self.close()
                what = f"plan {lab!r} of " if lab else ""
                raise CatalogError(f"{self.folder} holds another batch for {what}this label "
                                   f"({have[lab][1]}); this one is {describe[lab]}. {_REFUSED}")
        new = [(lab, fp, describe[lab]) for lab, fp in plans.items() if lab not in have]
        with self._tx():
            self.db.executemany("INSERT INTO plans VALUES (?, ?, ?)", new)
            if not old:
                self.db.execute("INSERT INTO meta (key, value) VALUES ('created', ?)",
                                (str(time.time()),))  # fmt: skip
        self.fresh = not have

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        """Close the database and let another batch use the folder."""
        self.db.close()
        self._lock.close()

    # ------------------------------------------------------------------ writing

    def add(self, rows: Iterable[tuple[str, int, int, Mapping[str, Any]]]) -> None:
        """Add (plan, run, seed, params) rows as pending; rows already there are kept."""
        with self._tx():
            self.db.executemany(
                "INSERT OR IGNORE INTO runs (plan, run, seed, params, status) "
                "VALUES (?, ?, ?, ?, 'pending')",
                [(p, r, s, _json(dict(x))) for p, r, s, x in rows],
            )

    def recover(self, *, retry_failed: bool = False) -> list[tuple[str, int]]:
        """Prepare a resumed batch: runs left ``running`` by an interrupted batch are pending
        again, except those whose worker died :data:`MAX_CRASHES` times, which are marked
        failed (returned). With *retry_failed*, failed runs are pending again."""
        with self._tx():
            dead = self.db.execute(
                "SELECT plan, run FROM runs WHERE status IN ('running', 'pending') "
                "AND crashes >= ?", (MAX_CRASHES,),
            ).fetchall()  # fmt: skip
            self.db.execute(
                "UPDATE runs SET status = 'failed', error = ? WHERE status IN "
                "('running', 'pending') AND crashes >= ?",
                (f"its worker process died {MAX_CRASHES} times (a crash, os._exit or out of "
                 "memory)", MAX_CRASHES),
            )  # fmt: skip
            self.db.execute("UPDATE runs SET status = 'pending' WHERE status = 'running'")
            if retry_failed:
                self.db.execute(
                    "UPDATE runs SET status = 'pending', error = NULL, crashes = 0 "
                    "WHERE status = 'failed'"
                )
        return [(p, int(r)) for p, r in dead]

    def started(self, plan: str, run: int) -> None:
        """Mark a run as handed to a worker."""
        with self._tx():
            self.db.execute(
                "UPDATE runs SET status = 'running', attempts = attempts + 1 "
                "WHERE plan = ? AND run = ?", (plan, run),
            )  # fmt: skip

    def finished(self, plan: str, run: int, outcome: Mapping[str, Any]) -> None:
        """Record a run's outcome (``status`` done or failed, ``metrics`` or ``error``)."""
        with self._tx():
            self.db.execute(
                "UPDATE runs SET status = ?, metrics = ?, error = ?, warnings = ?, wall_s = ?, "
                "finished_at = ? WHERE plan = ? AND run = ?",
                (
                    outcome["status"],
                    _json(outcome.get("metrics")) if outcome.get("metrics") is not None else None,
                    outcome.get("error"),
                    _json(list(outcome.get("warnings", []))),
                    outcome.get("wall_s"),
                    time.time(),
                    plan,
                    run,
                ),
            )

    def crashed(self, plan: str, run: int) -> int:
        """Count a death of its worker against a run (it goes back to pending); return how
        many times its worker has died."""
        with self._tx():
            self.db.execute(
                "UPDATE runs SET status = 'pending', crashes = crashes + 1 "
                "WHERE plan = ? AND run = ?", (plan, run),
            )  # fmt: skip
            (n,) = self.db.execute("SELECT crashes FROM runs WHERE plan = ? AND run = ?",
                                   (plan, run)).fetchone()  # fmt: skip
        return int(n)

    def reuse(self, other: str | Path, *, fingerprint: str, label: str, runs: int) -> int:
        """Copy the finished runs of another batch folder's plan of *fingerprint* (the same
        scenario, seeds and draws) into this catalog as plan *label*, for runs below *runs*
        that this catalog has not done; return how many were copied.

        Raises
        ------
        CatalogError
            When *other* has no catalog, or no plan of that fingerprint.
        """
        path = Path(other) / CATALOG_NAME
        if not path.is_file():
            raise CatalogError(f"{other}: no {CATALOG_NAME}; expected the folder of an emtwin "
                               "batch (emtwin batch BASE --out DIR)")  # fmt: skip
        try:
            src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
            try:
                tables = {n for (n,) in src.execute("SELECT name FROM sqlite_master")}
                if "plans" not in tables:
                    raise CatalogError(f"{other}: a batch folder of an older emtwin; run its "
                                       "`emtwin batch` command once more to update it")
                plans = dict(src.execute("SELECT fingerprint, label FROM plans").fetchall())
                described = [d for (d,) in src.execute("SELECT describe FROM plans")]
                if fingerprint not in plans:
                    raise CatalogError(
                        f"{other} is not a batch of this base (it holds "
                        f"{'; '.join(described) or 'no plan'}): its runs would not share the "
                        "base's scenario, seeds and draws"
                    )
                got = src.execute(
                    "SELECT run, seed, params, status, metrics, error, warnings, wall_s, "
                    "attempts, crashes, finished_at FROM runs WHERE plan = ? AND status = "
                    "'done' AND run < ?", (plans[fingerprint], runs),
                ).fetchall()  # fmt: skip
            finally:
                src.close()
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{path}: cannot read the batch catalog ({exc})") from None
        mine = {r for (r,) in self.db.execute(
            "SELECT run FROM runs WHERE plan = ? AND status = 'done'", (label,))}  # fmt: skip
        rows = [(label, *g) for g in got if g[0] not in mine]
        with self._tx():
            self.db.executemany(
                "INSERT OR REPLACE INTO runs (plan, run, seed, params, status, metrics, error, "
                "warnings, wall_s, attempts, crashes, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows,
            )  # fmt: skip
        return len(rows)

    # ------------------------------------------------------------------ reading

    def rows(self, status: str | None = None) -> list[RunRow]:
        """Every run (or those with *status*), ordered by run, then plan as added."""
        q = ("SELECT plan, run, seed, params, status, metrics, error, warnings, wall_s, "
             "attempts, crashes FROM runs")  # fmt: skip
        args: tuple[Any, ...] = ()
        if status is not None:
            q += " WHERE status = ?"
            args = (status,)
        q += " ORDER BY run, (SELECT rowid FROM plans WHERE plans.label = runs.plan)"
        out = []
        for p, r, s, par, st, m, e, w, wall, att, cr in self.db.execute(q, args):
            out.append(RunRow(
                plan=p, run=int(r), seed=int(s), params=json.loads(par), status=st,
                metrics=json.loads(m) if m else None, error=e,
                warnings=json.loads(w) if w else [], wall_s=wall, attempts=int(att),
                crashes=int(cr),
            ))  # fmt: skip
        return out

    def counts(self) -> dict[str, int]:
        """Runs by state: ``{"pending": n, "running": n, "done": n, "failed": n}``."""
        out = dict.fromkeys(("pending", "running", "done", "failed"), 0)
        for st, n in self.db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"):
            out[st] = int(n)
        return out
