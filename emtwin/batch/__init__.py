"""Batch ensembles and plan comparison (docs/batch.md).

``run_batch(scenario, runs=N)`` runs a scenario N times, each run with its own seed
and its own draw of the scenario's ``uncertain`` values; ``run_comparison(base,
[plan, ...], runs=N)`` runs the base and every plan on the same seeds and draws
(common random numbers) and compares them with paired 95 % intervals. Runs go to a
local process pool or to Dask; a SQLite catalog in the batch folder makes every
batch resumable. Each run's metrics are the numeric leaves of its ``summary.json``.

Modules: :mod:`~emtwin.batch.uncertain` (key paths, distributions, draws),
:mod:`~emtwin.batch.catalog` (the SQLite catalog), :mod:`~emtwin.batch.worker`
(one run in a worker), :mod:`~emtwin.batch.runner` (executors, progress),
:mod:`~emtwin.batch.ensemble` (batches and comparisons), :mod:`~emtwin.batch.compare`
(statistics), :mod:`~emtwin.batch.index` (the response index).
"""

from emtwin.batch.catalog import Catalog, CatalogError
from emtwin.batch.compare import comparison_table, headline
from emtwin.batch.ensemble import (
    BatchResult,
    ComparisonResult,
    load_plan,
    run_batch,
    run_comparison,
    run_ensemble,
)
from emtwin.batch.index import response_index
from emtwin.batch.runner import WorkerLostError
from emtwin.batch.uncertain import parameters, run_seed, sample
from emtwin.batch.worker import flatten

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
