"""Wind map frames: the wind field at output times, on a coarser grid, for the map.

The World grid is cut into square blocks of ``factor`` x ``factor`` cells, so
that a frame holds at most ``max_cells`` blocks. Per block:

- speed: the mean of the 1-min sustained speed over the block's cells inside
  the domain, m/s (NaN for a block with none);
- direction: where the block's mean wind vector blows from, degrees clockwise
  from north (the convention of ``wind__direction``).

The wind is smooth over a town (its scale is the storm's radius of maximum
wind, tens of km), so the mean loses little. At most ``max_frames`` frames are
held: beyond that every other frame is dropped and only every 2nd, 4th, ...
output time is kept from then on (the flood's rule for its depth frames); the
last output time is always kept.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["WindFrames", "block_factor", "block_mean", "WIND_FRAME_MAX_CELLS",
           "MAX_WIND_FRAMES"]  # fmt: skip

#: Wind frames hold at most this many blocks each (float32: 40 kB a frame).
WIND_FRAME_MAX_CELLS = 10_000
#: At most this many wind frames are held.
MAX_WIND_FRAMES = 300


def block_factor(shape: tuple[int, int], max_cells: int) -> int:
    """The smallest block side (cells) that leaves at most *max_cells* blocks."""
    nrows, ncols = shape
    f = max(1, math.ceil(math.sqrt(nrows * ncols / max_cells)))
    while math.ceil(nrows / f) * math.ceil(ncols / f) > max_cells:
        f += 1
    return f


def _block_sum(a: np.ndarray, f: int) -> np.ndarray:
    r, c = a.shape
    p = np.pad(a, ((0, -r % f), (0, -c % f)))
    return p.reshape(p.shape[0] // f, f, p.shape[1] // f, f).sum(axis=(1, 3))


def block_mean(a: np.ndarray, f: int, mask: np.ndarray) -> np.ndarray:
    """Mean of *a* over the *mask* cells of each f x f block (NaN: no such cell)."""
    w = mask.astype(np.float64)
    n = _block_sum(w, f)
    s = _block_sum(np.where(mask, a, 0.0).astype(np.float64), f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1.0), np.nan)


class WindFrames:
    """The wind frames of a run, taken at each output time.

    Parameters
    ----------
    mask
        The World's domain mask, shape (nrows, ncols).
    max_cells, max_frames
        The budgets above.
    """

    def __init__(self, mask: np.ndarray, *, max_cells: int = WIND_FRAME_MAX_CELLS,
                 max_frames: int = MAX_WIND_FRAMES) -> None:  # fmt: skip
        self.mask = np.asarray(mask, dtype=bool)
        self.factor = block_factor(self.mask.shape, max_cells)
        self.max_frames = int(max_frames)
        self.times: list[float] = []
        self.speed: list[np.ndarray] = []
        self.direction: list[np.ndarray] = []
        self._stride, self._n = 1, 0
        self._last: tuple[float, np.ndarray, np.ndarray] | None = None

    def frame(self, speed: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame: block-mean speed (m/s) and the direction of the block-mean vector (deg)."""
        rad = np.radians(direction)
        u = -speed * np.sin(rad)  # towards east
        v = -speed * np.cos(rad)  # towards north
        f, m = self.factor, self.mask
        s = block_mean(speed, f, m)
        um, vm = block_mean(u, f, m), block_mean(v, f, m)
        d = np.degrees(np.arctan2(-um, -vm)) % 360.0
        return s.astype(np.float32), np.where(np.isfinite(s), d, np.nan).astype(np.float32)

    def add(self, time_s: float, speed: np.ndarray, direction: np.ndarray) -> None:
        """Take the wind at output time *time_s* (s): speed m/s, direction degrees from."""
        s, d = self.frame(speed, direction)
        i, self._n = self._n, self._n + 1
        self._last = (float(time_s), s, d)
        if i % self._stride:
            return
        self.times.append(float(time_s))
        self.speed.append(s)
        self.direction.append(d)
        if len(self.times) > self.max_frames:
            self.times, self.speed = self.times[::2], self.speed[::2]
            self.direction = self.direction[::2]
            self._stride *= 2

    def stacks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(times_s (n,), speed (n, r, c), direction (n, r, c))``, the last output time
        included; None before the first frame."""
        if self._last is None:
            return None
        times, speed, direction = list(self.times), list(self.speed), list(self.direction)
        if times[-1] != self._last[0]:
            times.append(self._last[0])
            speed.append(self._last[1])
            direction.append(self._last[2])
        return np.array(times), np.stack(speed), np.stack(direction)
