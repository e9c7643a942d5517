"""Batch ensembles and plan comparison (docs/batch.md).

``run_batch(scenario, runs=N)`` runs a scenario N times, each run with its own seed
and its own draw of the scenario's ``uncertain`` values; ``run_comparison(base,
[plan, ...], runs=N)`` runs the base and every plan on the same seeds and draws
(common random numbers) and compares them with paired 95 % intervals. Runs go to a
local process pool or to Dask; a SQLite catalog in the batch folder makes every
batch resumable. Each run's metrics are the numeric leaves of its ``summary.json``.

Modules: :mod:`~emtwin.sim.batch.uncertain` (key paths, distributions, draws),
:mod:`~emtwin.sim.batch.catalog` (the SQLite catalog), :mod:`~emtwin.sim.batch.worker`
(one run in a worker), :mod:`~emtwin.sim.batch.runner` (executors, progress),
:mod:`~emtwin.sim.batch.ensemble` (batches and comparisons), :mod:`~emtwin.sim.batch.compare`
(statistics), :mod:`~emtwin.sim.batch.index` (the response index).
"""

from emtwin.sim.batch.catalog import Catalog, CatalogError
from emtwin.sim.batch.compare import comparison_table, headline
from emtwin.sim.batch.ensemble import (
    BatchResult,
    ComparisonResult,
    load_plan,
    run_batch,
    run_comparison,
    run_ensemble,
)
from emtwin.sim.batch.index import response_index
from emtwin.sim.batch.runner import WorkerLostError
from emtwin.sim.batch.uncertain import parameters, run_seed, sample
from emtwin.sim.batch.worker import flatten

__all__ = [
    "BatchResult",
    "Catalog",
    "CatalogError",
    "ComparisonResult",
    "WorkerLostError",
    "comparison_table",
    "flatten",
    "headline",
    "load_plan",
    "parameters",
    "response_index",
    "run_batch",
    "run_comparison",
    "run_ensemble",
    "run_seed",
    "sample",
]
