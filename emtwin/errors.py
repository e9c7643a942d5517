"""The exception tree of emtwin.

Every error a user can cause derives from :class:`EmtwinError` and from the
nearest builtin, so callers may catch either. Messages name the file, the key
path and what was expected.
"""

from __future__ import annotations

import re

__all__ = [
    "EmtwinError",
    "ScenarioError",
    "InputDataError",
    "CRSError",
    "NetworkError",
    "SimulationError",
    "KernelError",
    "OutputError",
]


class EmtwinError(Exception):
    """Base class of every error emtwin raises for bad input or a failed run."""


class ScenarioError(EmtwinError, ValueError):
    """A scenario file (or plan) is malformed or invalid.

    *errors* holds every problem found, each a one-line message naming the
    file, the key path and what was expected.
    """

    def __init__(self, errors: list[str] | str, *, file: str | None = None) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        self.file = file
        names_a_file = bool(re.match(r"^\S+\.ya?ml(:\d+)?:", self.errors[0]))
        head = f"{file}: " if file and len(self.errors) == 1 and not names_a_file else ""
        if len(self.errors) == 1:
            msg = head + self.errors[0]
        else:
            where = f" in {file}" if file else ""
            msg = f"{len(self.errors)} problems{where}:\n" + "\n".join(
                f"  - {e}" for e in self.errors
            )
        super().__init__(msg)


class InputDataError(EmtwinError, ValueError):
    """An input data file (DEM, roads, places) is missing, unreadable or unusable."""


class CRSError(InputDataError):
    """A coordinate reference system is missing or cannot be used by PROJ."""


class NetworkError(InputDataError):
    """The road network is empty, disconnected where it must not be, or unreachable."""


class SimulationError(EmtwinError, RuntimeError):
    """A run failed in a way the scenario could not have been checked for in advance."""


class KernelError(EmtwinError, ValueError):
    """A numerical kernel got arrays or parameters it cannot work with."""


class OutputError(EmtwinError, OSError):
    """An output folder cannot be written, or is not one emtwin may replace."""


class CheckpointError(EmtwinError, RuntimeError):
    """A run's state cannot be saved or restored (a GPU flood, a damaged file, ...)."""
