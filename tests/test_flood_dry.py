"""Dry blocks left out of global steps (emtwin.kernels._flood_dry): which blocks, the
windows of what is left, and the results, which must be the full step's bit for bit."""

import numba
import numpy as np
import pytest

from emtwin.kernels import _flood_dry as dry
from emtwin.kernels import flood as flood_mod
from emtwin.kernels.flood import FloodModel

B = 16


def _windows(h, qx=None, qy=None, *, hot=None, zero_only=False, max_rows=1000):
    nr, nc = h.shape
    qx = np.zeros((nr, nc + 1)) if qx is None else qx
    qy = np.zeros((nr + 1, nc)) if qy is None else qy
    nbr, nbc = -(-nr // B), -(-nc // B)
    hot = np.zeros((nbr, nbc), np.uint8) if hot is None else hot
    skip = np.zeros((nbr, nbc), np.uint8)
    win = np.zeros((nbr * nbc + 4, 5), np.int64)
    n, cells, hskip = dry.dry_windows(h, qx, qy, B, 1e-3, zero_only, hot, max_rows, skip, skip,
                                      win, np.zeros((nbr, nbc)), True, False)  # fmt: skip
    return skip, win[:n, :4], cells, hskip


def test_a_block_is_skipped_only_when_it_and_its_eight_neighbours_are_dry():
    """One wet cell in block (1, 2) of a 4 x 5 grid of 16-cell blocks keeps that block
    and its 8 neighbours (rows 0-2, columns 1-3: 9 x 256 cells); the rest is skipped,
    and the faces around the skipped cells are set to 0 (the full step would set
    them so: both sides are dry). A depth of 0.5 mm is dry, unless under infiltration,
    where only an exact 0 is."""
    h = np.zeros((64, 80))
    h[20, 40] = 0.3
    h[60, 5] = 5e-4  # dry, in a skipped block
    qx = np.zeros((64, 81))
    qy = np.zeros((65, 80))
    qx[60, 5] = 0.01  # a stale discharge next to it
    qx[20, 40] = 0.02  # and one beside the wet cell, which stays
    skip, win, cells, hskip = _windows(h, qx, qy)
    expect = np.ones((4, 5), np.uint8)
    expect[0:3, 1:4] = 0
    assert np.array_equal(skip, expect)
    assert cells == 9 * 256
    assert win.tolist() == [[0, 48, 16, 64]]  # three bands of the same columns, merged
    assert qx[60, 5] == 0.0 and qx[20, 40] == 0.02
    assert hskip == 5e-4
    skip, _, cells, _ = _windows(h, zero_only=True)  # the 0.5 mm now counts as wet
    # its block (3, 0) keeps (2, 0), (2, 1), (3, 0), (3, 1); (2, 1) was kept already
    assert skip[3, 0] == 0 and skip[2, 0] == 0 and cells == (9 + 3) * 256


def test_a_find_looks_again_only_at_blocks_newly_skipped_until_the_state_is_stale():
    """Blocks skipped at the last find (nothing but steps on the windows having run
    since, which leave them as they are) are not looked at again: they stay skipped,
    keep their deepest depth, and their faces are not read; a newly skipped block's
    stale discharge is set to 0 and its depth counts; after stale() (a full or local
    step ran, or water was added) every block is looked at again."""
    h = np.zeros((64, 80))
    h[20, 40] = 0.3  # block (1, 2) wet: rows 0-2, columns 1-3 kept
    h[60, 5] = 5e-4  # in block (3, 0), skipped
    qx, qy = np.zeros((64, 81)), np.zeros((65, 80))
    d = dry.DryWindows(80, B, np.zeros((4, 5), np.uint8), 2, np.float64)
    assert d.find(h, qx, qy, 1e-3, False, 64) == 9 * 256 and d.hskip == 5e-4
    # steps on the windows move the water to block (1, 1): rows 0-2, columns 0-2 kept
    h[20, 40], h[20, 24] = 0.0, 0.3
    h[20, 50] = 8e-4  # in block (1, 3), now skipped for the first time
    qx[20, 50] = 0.02  # and a stale discharge there
    qx[60, 70] = 0.01  # one in block (3, 4), skipped both times (cannot happen: see below)
    assert d.find(h, qx, qy, 1e-3, False, 64) == 9 * 256
    assert d.hskip == 8e-4 and qx[20, 50] == 0.0
    assert qx[60, 70] == 0.01  # not looked at: it was set to 0 at the first find
    h[60, 5] = 9e-4  # a full step could have changed it
    d.stale()
    d.find(h, qx, qy, 1e-3, False, 64)
    assert qx[60, 70] == 0.0 and d.hskip == 9e-4


def test_hot_blocks_and_their_neighbours_are_never_skipped():
    """A water-level boundary on the east edge (blocks of column 4 hot) keeps columns
    3-4 as well; with the wet cell of the test above, 6 blocks are skipped: column 0,
    and row 3 of columns 1-2. Its windows: per band, the runs of kept blocks. An open
    or closed edge is not hot (its face carries nothing from a dry cell)."""
    h = np.zeros((64, 80))
    h[20, 40] = 0.3
    hot = dry.hot_blocks(h.shape, B, np.zeros(0, np.int64), np.zeros(0, np.int64),
                         (False, False, False, True))  # fmt: skip
    assert hot[:, 4].all() and hot.sum() == 4
    m = FloodModel(np.zeros((64, 80)), None, 10.0, time_stepping="local")
    m.set_boundary("west", "open")
    m.set_boundary("east", "level", times_s=[0.0], level_m=[0.5])
    m._dry_windows(zero=False)
    expect = np.zeros((8, 10), np.uint8)  # blocks of the model's 8 x 8 cells
    expect[:, 9] = 1  # the level edge's blocks; the open west edge keeps none
    assert np.array_equal(m._dry.hot, expect)
    skip, win, cells, _ = _windows(h, hot=hot)
    assert skip.sum() == 6 and skip[:, 0].all() and skip[3, 1] and skip[3, 2]
    assert cells == 14 * 256
    assert win.tolist() == [[0, 48, 16, 80], [48, 64, 48, 80]]
    inflow = dry.hot_blocks(h.shape, B, np.array([63]), np.array([0]), (False,) * 4)
    assert inflow[3, 0] == 1 and inflow.sum() == 1


def test_balance_cuts_the_windows_into_groups_of_equal_cells():
    """2,304 cells in one window of 48 columns: two groups of 24 rows; three windows
    of 400, 1,600 and 400 cells in two groups: the middle one is cut at 600 cells
    before the end of the first group, its 15th row of 40 cells."""
    win = np.zeros((8, 5), np.int64)
    win[0, :4] = (0, 48, 16, 64)
    gs = np.zeros(3, np.int64)
    n = dry.balance(win, 1, 2, gs)
    assert win[:n].tolist() == [[0, 24, 16, 64, 0], [24, 48, 16, 64, 24]]
    assert gs.tolist() == [0, 1, 2]
    win[:3, :4] = [(0, 20, 0, 20), (0, 40, 30, 70), (40, 50, 0, 40)]
    n = dry.balance(win, 3, 2, gs)
    assert win[:n, :4].tolist() == [[0, 20, 0, 20], [0, 20, 30, 70], [20, 40, 30, 70],
                                    [40, 50, 0, 40]]  # fmt: skip
    assert gs.tolist() == [0, 2, 4]
    assert win[:n, 4].tolist() == [0, 20, 40, 60]  # the rows' offsets


def _valley(ts, dtype, infiltration, **kw):
    """A reservoir at the head of a dry valley, released at 5 min; a side stream from
    10 min; a rain burst at 15-16 min; an open outlet: most of the valley is dry for
    most of the run."""
    nr, nc = 80, 160
    y, x = np.mgrid[0:nr, 0:nc]
    z = 0.01 * (nc - x) + 0.002 * (y - nr / 2) ** 2
    m = FloodModel(z, None, 10.0, manning=0.03, dtype=dtype, time_stepping=ts, **kw)
    m.add_reservoir((np.repeat(np.arange(30, 50), 20), np.tile(np.arange(2, 22), 20)),
                    float(z[40, 2]) + 3.0, 300.0)  # fmt: skip
    m.add_inflow([70], [100], [0, 599, 600, 1500], [0.0, 0.0, 8.0, 8.0], name="stream")
    m.set_boundary("east", "open")
    m.set_rain([0, 900, 960], [0, 40, 0])
    if infiltration:
        m.set_infiltration(5.0)
    return m


@pytest.mark.parametrize(("dtype", "infiltration", "threads"),
                         [(np.float64, False, 2), (np.float32, False, 2),
                          (np.float64, True, 1)])  # fmt: skip
def test_global_steps_that_leave_out_dry_blocks_are_the_full_steps_bit_for_bit(
        dtype, infiltration, threads):  # fmt: skip
    """Local stepping with an lts_cost so high that every macro step is made of global
    steps, which leave out the dry blocks: the state and records are those of global
    stepping bit for bit, through the release, the stream starting, the rain (the
    skipping stops, and starts again after it) and infiltration; and fewer cells were
    computed (before the release, the hand count)."""
    a = _valley("global", dtype, infiltration)
    b = _valley("local", dtype, infiltration, lts_cost=1e9)
    for m in (a, b):
        m._set_chunks(4, parallel=threads > 1 and numba.get_num_threads() > 1)
    for t in (240.0, 700.0, 930.0, 1500.0):
        a.advance(t)
        b.advance(t)
        for name in ("h", "qx", "qy", "max_depth", "max_speed", "max_hr", "max_aidr",
                     "arrival_time"):  # fmt: skip
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), (t, name)
        if t == 240.0:
            # before the release, 33 of the 200 blocks of 8 x 8 cells step: the
            # reservoir's (rows 3-6, columns 0-2) and their neighbours (rows 2-7,
            # columns 0-3), the stream's (8, 12) and its neighbours (rows 7-9, columns
            # 11-13); the open east edge is dry and lets nothing out
            assert b.cell_updates * 200 == a.cell_updates * 33
    assert b.steps == a.steps == b.lts_global_steps
    assert b.cell_updates < 0.9 * a.cell_updates
    la, lb = a.ledger(), b.ledger()
    assert abs(lb["error_rel"]) < (1e-13 if dtype == np.float64 else 1e-6)
    assert la["boundary_out"] > 1.0  # the water reached the outlet: its faces were computed
    assert lb["boundary_out"] == pytest.approx(la["boundary_out"], rel=1e-12, abs=1e-9)


def _random_case(seed, ts, **kw):
    """A random small case: odd grid shape, noisy bed, maybe a mask with holes, a patch
    of initial water, mixed edges (open, open with a slope, a level series), inflows
    starting at random times, a reservoir, a rain burst (maybe per cell), infiltration,
    float32, a step cap, a dry depth and an arrival depth of different sizes."""
    rng = np.random.default_rng(seed)
    nr, nc = int(rng.integers(5, 90)), int(rng.integers(5, 140))
    y, x = np.mgrid[0:nr, 0:nc]
    z = (rng.uniform(-0.02, 0.02) * x + rng.uniform(-0.02, 0.02) * y
         + rng.uniform(0, 0.3) * rng.standard_normal((nr, nc)))  # fmt: skip
    mask = None
    if rng.random() < 0.4:
        mask = np.ones((nr, nc), bool)
        for _ in range(int(rng.integers(1, 4))):
            r0, c0 = rng.integers(0, nr), rng.integers(0, nc)
            mask[r0 : r0 + rng.integers(1, 10), c0 : c0 + rng.integers(1, 20)] = False
        mask[0, 0] = True
    h0 = None
    if rng.random() < 0.5:
        h0 = np.zeros((nr, nc))
        r0, c0 = rng.integers(0, nr), rng.integers(0, nc)
        h0[r0 : r0 + rng.integers(1, 15), c0 : c0 + rng.integers(1, 15)] = rng.uniform(2e-4, 2.0)
        if mask is not None:
            h0[~mask] = 0.0
    opts = {"manning": 0.03 if rng.random() < 0.6 else rng.uniform(0.01, 0.1, (nr, nc)),
            "h0": h0, "dtype": np.float32 if rng.random() < 0.3 else np.float64,
            "dry_tol": float(rng.choice([1e-3, 1e-2, 1e-4])),
            "arrival_depth": float(rng.choice([0.05, 5e-4]))}  # fmt: skip
    if rng.random() < 0.3:
        opts["max_dt"] = float(rng.uniform(0.2, 3.0))
    m = FloodModel(z, mask, float(rng.choice([2.0, 10.0, 30.0])), time_stepping=ts, **opts,
                   **kw)  # fmt: skip
    inside = np.argwhere(m.mask)
    for side in ("north", "south", "west", "east"):
        u = rng.random()
        if u < 0.3:
            m.set_boundary(side, "open")
        elif u < 0.4:
            m.set_boundary(side, "open", slope=float(rng.uniform(1e-4, 1e-2)))
        elif u < 0.55:
            lv = float(z.mean()) + rng.uniform(-0.5, 1.0, 3)
            m.set_boundary(side, "level", times_s=[0.0, 300.0, 900.0], level_m=lv.tolist())
    for _ in range(int(rng.integers(0, 3))):
        r, c = inside[rng.integers(0, len(inside))]
        t0 = float(rng.uniform(0, 600))
        q = [0.0, float(rng.uniform(0.5, 10)), float(rng.uniform(0, 10)), 0.0]
        m.add_inflow([r], [c], [t0, t0 + 1, t0 + 300, t0 + 301], q)
    if rng.random() < 0.4:
        r, c = inside[rng.integers(0, len(inside))]
        sel = np.zeros((nr, nc), bool)
        sel[r : r + 6, c : c + 6] = True
        sel &= m.mask
        m.add_reservoir(sel, float(z[sel].max()) + rng.uniform(0.1, 3), float(rng.uniform(0, 800)))
    if rng.random() < 0.5:
        t0 = float(rng.uniform(0, 600))
        mult = None if rng.random() < 0.5 else rng.uniform(0, 2, (nr, nc))
        m.set_rain([0.0, t0, t0 + rng.uniform(10, 200)], [0.0, float(rng.uniform(1, 100)), 0.0],
                   multiplier=mult)  # fmt: skip
    if rng.random() < 0.3:
        m.set_infiltration(float(rng.uniform(0.5, 20)))
    return m, rng


def test_dry_blocks_give_the_full_steps_bit_for_bit_on_random_cases():
    """16 random cases (see _random_case; a reservoir may be released early from
    outside, as a cascade does): local stepping made of global steps that leave out
    dry blocks gives global stepping's state and records bit for bit at each read.
    (280 such cases were checked while writing this.) Where local stepping took
    local macro steps instead (a grid with nothing wet, where every tile is skipped),
    the state must still agree."""
    skipped = 0
    for seed in range(16):
        a, rng = _random_case(seed, "global")
        b, _ = _random_case(seed, "local", lts_cost=1e9)
        threads = int(rng.integers(1, 3))
        for m in (a, b):
            m._set_chunks(int(rng.integers(1, 6)),
                          parallel=threads > 1 and numba.get_num_threads() > 1)  # fmt: skip
        release = float(rng.uniform(100, 900)) if a._reservoirs and rng.random() < 0.5 else None
        for t in (150.0, 420.0, 800.0, 1300.0):
            if release is not None and a.t <= release < t:
                for m in (a, b):
                    m.advance(release)
                    m.release_reservoir(0)
            a.advance(t)
            b.advance(t)
            for name in ("h", "qx", "qy", "max_depth", "max_speed", "max_hr", "max_aidr",
                         "arrival_time"):  # fmt: skip
                assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), \
                    (seed, t, name)  # fmt: skip
        if b.lts_global_steps == b.steps:
            assert b.steps == a.steps, seed
        skipped += b.cell_updates < a.cell_updates
    assert skipped >= 8  # most cases left blocks out


@pytest.mark.parametrize("dry_max", [0.5, 1.0])
def test_windows_keeping_most_cells_give_way_to_full_steps(dry_max, monkeypatch):
    """A lake over the west 48 of 64 columns, a dry bank east of it: the blocks of 8 x 8
    cells left out are the bank's last column of blocks (the one beside the lake is a
    neighbour of wet blocks), so the windows keep 56 / 64 of the cells. Above DRY_MAX
    (0.5) the global steps are full ones (every cell counted); with DRY_MAX = 1 the
    windows are used and count 56 / 64 of the cells per step (the hand count). The
    state is the global run's bit for bit either way."""
    monkeypatch.setattr(flood_mod, "DRY_MAX", dry_max)
    nr = nc = 64
    z = np.where(np.arange(nc)[None, :] < 48, 0.0, 5.0) * np.ones((nr, 1))
    h0 = np.where(z == 0.0, 1.0, 0.0)
    models = [FloodModel(z, None, 10.0, manning=0.03, h0=h0, time_stepping=ts, **kw)
              for ts, kw in (("global", {}), ("local", {"lts_cost": 1e9}))]  # fmt: skip
    for m in models:
        m.add_inflow([32], [4], [0.0, 600.0], [2.0, 2.0])
        m.advance(600.0)
    a, b = models
    for name in ("h", "qx", "qy", "max_depth", "max_speed", "arrival_time"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert b.steps == a.steps == b.lts_global_steps > 0
    kept = 1.0 if dry_max < 56 / 64 else 56 / 64
    assert b.cell_updates == round(kept * a.cell_updates)
