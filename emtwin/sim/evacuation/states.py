"""Household states of the evacuation; every household is in exactly one at the end."""

__all__ = ["HOME", "TRAVELLING", "SHELTERED", "OUT", "STRANDED", "RESCUED", "STATE_NAMES"]

HOME, TRAVELLING, SHELTERED, OUT, STRANDED, RESCUED = 0, 1, 2, 3, 4, 5
#: Names of the states, by code (``never_left`` is HOME at the end of a run).
STATE_NAMES = ("never_left", "travelling", "sheltered", "out", "stranded", "rescued")
