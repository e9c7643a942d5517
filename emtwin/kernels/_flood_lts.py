"""Numba cores of the flood kernel with local time stepping (private; see docs/flood.md).

The same local inertial scheme as :mod:`emtwin.kernels._flood_numba` (Bates et
al. 2010, de Almeida et al. 2012; the same face and continuity formulas,
written per cell), advanced on square tiles of ``B x B`` cells that each take
their own step ``dt0 * 2**L``: the local time stepping of Sanders (2008) and
Dazzi et al. (2018), with levels held per block of cells as in Crossley &
Wright (2005). One call of :func:`macro` (or :func:`macro_parallel`) advances
the whole grid over one macro step of ``N = 2**Lm`` base steps ``dt0``;
all tiles end on its end time.

Sub-step ``k`` (0 <= k < N):

- phase A: every tile with ``k % 2**L == 0`` computes the new discharge of
  the faces it owns into ``qxn``/``qyn`` from the old depths ``h`` and the old
  discharges ``qx``/``qy``. A face belongs to the finer of its two tiles
  (ties: the tile south or east of it), so it is updated at the finer level.
  On a face whose other side is coarser, ``q dt`` is also summed into the
  face accumulator ``vx``/``vy`` (m2) for that side;
- phase C: every tile that did phase A copies its faces to ``qx``/``qy``;
  every tile whose step ends at ``k`` (``(k + 1) % 2**L == 0``) updates its
  cells: continuity with, on each face, the new discharge when the face runs
  at the cell's level, else the accumulated ``q dt`` of the finer side
  divided by the cell's step (then reset). Both sides of a face therefore
  see the same volume: mass is conserved to round-off. Records follow as in
  the global step.

Level-0 tiles, which compute their faces in every sub-step, copy nothing:
in odd sub-steps (where only level 0 computes faces) they read ``qxn``/``qyn``
and write ``qx``/``qy``; every other level's faces hold the same value in
both buffers between the copy and their next update, so the reads find the
current values; over the even number of sub-steps of a macro step the faces
end in ``qx``/``qy`` (docs/flood.md, *Level-0 faces in two buffers*). A
macro step of one sub-step copies every level.

Tiles that are dry with dry neighbours are skipped (level :data:`SKIP`); a
face to a skipped tile carries nothing.

A tile whose step exceeds its slope cap (:func:`step_caps`), where the
global step's friction would ring, takes the friction implicitly
(:func:`_fric`, :func:`implicit`); runs of tiles split where that changes.

Every level takes the two phases, level 0 included, band by band: phase A
of band b + 1, then phase C of band b (:func:`_bands`), so that the faces
phase A wrote are still in cache when phase C reads them. A one-pass variant
for the level-0 runs (the global step's row order, faces and continuity
together, with copies of the old values around each run) and one for tiles
of any level with no finer neighbour gave the same numbers but were 5-12 %
slower on the drills (2026-12-07, docs/flood.md, *One pass or two*).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from emtwin.kernels import _flood_numba as _nb
from emtwin.kernels._flood_numba import (
    BC_CLOSED,
    D_DRY,
    D_HALF,
    D_N2,
    D_ONE,
    D_QUARTER,
    D_THETA,
    D_ZERO,
    MAX_SCALINGS,
    REACH,
    G,
    _bnd_q,
    _from_neighbours,
    _xbound,
    pow_m73,
    pow_m73_f32,
)

# The row loops of the global step, inlined here (the same Python functions,
# compiled again with inline="always"): a tile row is short, and a call with
# row slices costs reference counting on the arrays that, per call, is worth
# more than the row itself (and, shared by threads, much more).
_INL = {"cache": True, "error_model": "numpy", "inline": "always"}
_cont = njit(**_INL)(_nb._cont.py_func)
_infil = njit(**_INL)(_nb._infil.py_func)
_n2_x = njit(**_INL)(_nb._n2_x.py_func)
_n2_y = njit(**_INL)(_nb._n2_y.py_func)
_rec_arrival = njit(**_INL)(_nb._rec_arrival.py_func)
_rec_depth = njit(**_INL)(_nb._rec_depth.py_func)
_rec_hazard = njit(**_INL)(_nb._rec_hazard.py_func)
_rec_speed = njit(**_INL)(_nb._rec_speed.py_func)
_stats = njit(**_INL)(_nb._stats.py_func)
_x_ds = njit(**_INL)(_nb._x_ds.py_func)
_x_hf = njit(**_INL)(_nb._x_hf.py_func)
_x_q = njit(**_INL)(_nb._x_q.py_func)
_x_qt = njit(**_INL)(_nb._x_qt.py_func)
_y_ds = njit(**_INL)(_nb._y_ds.py_func)
_y_hf = njit(**_INL)(_nb._y_hf.py_func)
_y_q = njit(**_INL)(_nb._y_q.py_func)
_y_qt = njit(**_INL)(_nb._y_qt.py_func)


def _pw(hfb, dry, n2, first, n, pw):
    """n^2 h_flow^(-7/3) on faces first..n-1 (the global ``_pw``, inlined)."""


overload(_pw, jit_options={"error_model": "numpy"}, inline="always")(_nb._pw_impl)

#: Level of a tile that is skipped in this macro step (dry, with dry neighbours).
SKIP = 127
# Indices into the float64 parameter vector of :func:`macro`.
Q_DX, Q_DRY, Q_ARRIVAL, Q_RAIN, Q_INF, Q_DT0 = range(6)
N_QPARAMS = 6
# Columns of the per-tile accumulator.
A_VIN, A_VOUT, A_INF, A_HMAX, A_BAD, A_NNEG = range(6)
N_ACC = 6
#: Longest run of tiles done as one (cells of a row): long enough that a row of it
#: streams through memory as a row of the global step does. 1,024 (was 256 until
#: 2026-12-07): the city's 6 h flood 6 % faster, the drills 4-8 %, the same depths
#: (docs/flood.md, *Longer runs*).
RUN_CELLS = 1024


def _powm73(x):
    """``x ** (-7/3)`` in the precision of *x* (as the global step)."""


@overload(_powm73, jit_options={"error_model": "numpy"}, inline="always")
def _powm73_impl(x):
    if x == types.float32:
        return lambda x: pow_m73_f32(x)
    return lambda x: pow_m73(x)


@njit(cache=True, error_model="numpy", inline="always")
def _fric(num, qt, b, one):
    """New discharge (m2/s, state dtype) with the friction implicit in it.

    The face update ``q+ (1 + b |q|) = num`` (``b = g dt n^2 h_f^(-7/3)``,
    ``num`` the explicit part) takes ``|q|`` at the new discharge instead of
    the old: ``u + b u^2 = |num|`` gives ``u = 2 |num| / (1 + sqrt(1 + 4 b
    |num|))`` along the face, and with the transverse discharge *qt* ``q+ =
    num / (1 + b sqrt(u^2 + qt^2))`` (exact when qt = 0). With the old
    ``|q|`` (the global step), ``q -> (q + a) / (1 + b q)`` converges on
    Manning's discharge with the factor ``(1 - x) / (1 + x)``, x = b q*, which
    tends to -1 as the step grows: thin sheets on slopes then ring from step
    to step and break into spurious roll waves; with the new ``|q|`` the factor
    tends to 0 (docs/flood.md, *Implicit friction*).
    """
    a = abs(num)
    ba = b * a
    u = (a + a) / (one + np.sqrt(one + (ba + ba) + (ba + ba)))
    return num / (one + b * np.sqrt(u * u + qt * qt))


@njit(cache=True, error_model="numpy", inline="always")
def _y_qi(hfb, pw, ds, qt, qo, ql, qr, pd, qn):
    """As the global ``_y_q`` with the friction implicit in the new discharge (:func:`_fric`)."""
    theta, c1, gdt, inv_dx = pd[_nb.D_THETA], pd[_nb.D_C1], pd[_nb.D_GDT], pd[_nb.D_INVDX]
    dry, zero, one = pd[D_DRY], pd[D_ZERO], pd[D_ONE]
    for j in range(qo.shape[0]):
        hf = hfb[j]
        num = theta * qo[j] + c1 * (ql[j] + qr[j]) - gdt * hf * ds[j] * inv_dx
        qn[j] = _fric(num, qt[j], gdt * pw[j], one) if hf > dry else zero


@njit(cache=True, error_model="numpy", inline="always")
def _x_qi(hfb, pw, ds, qt, qo, pd, qn):
    """As the global ``_x_q`` with the friction implicit in the new discharge (:func:`_fric`)."""
    theta, c1, gdt, inv_dx = pd[_nb.D_THETA], pd[_nb.D_C1], pd[_nb.D_GDT], pd[_nb.D_INVDX]
    dry, zero, one = pd[D_DRY], pd[D_ZERO], pd[D_ONE]
    for j in range(1, qo.shape[0] - 1):
        hf = hfb[j]
        num = theta * qo[j] + c1 * (qo[j - 1] + qo[j + 1]) - gdt * hf * ds[j] * inv_dx
        qn[j] = _fric(num, qt[j], gdt * pw[j], one) if hf > dry else zero


@njit(cache=True, error_model="numpy", inline="always")
def _lev(tlev, ti, tj):
    """Level of tile (ti, tj); SKIP outside the tile grid."""
    if ti < 0 or tj < 0 or ti >= tlev.shape[0] or tj >= tlev.shape[1]:
        return SKIP
    return tlev[ti, tj]


@njit(cache=True, error_model="numpy", inline="always")
def _on_edge(side, r0, r1, c0, c1, nr, nc):
    """Whether rows [r0, r1) x columns [c0, c1) touch grid edge *side* (N, S, W, E)."""
    return (side == 0 and r0 == 0) or (side == 1 and r1 == nr) or \
        (side == 2 and c0 == 0) or (side == 3 and c1 == nc)  # fmt: skip


@njit(cache=True, error_model="numpy", inline="always")
def _capped(bopen, r0, r1, c0, c1, nr, nc):
    """Whether rows [r0, r1) x columns [c0, c1) touch a grid edge whose boundary is not
    closed (bit ``1 << side`` of *bopen*): its faces there keep the global step's
    friction, so its step keeps the slope cap (:func:`step_caps`)."""
    for side in range(4):  # noqa: SIM110 - (a generator does not compile for the GPU)
        if (bopen >> side) & 1 and _on_edge(side, r0, r1, c0, c1, nr, nc):
            return True
    return False


@njit(cache=True, error_model="numpy")
def _edge_depth(side, r0, r1, c0, c1, z, grp, level):
    """*level* over the lowest bed of the domain's cells on edge *side* of the rectangle
    (-inf when none of them is in the domain)."""
    nr, nc = z.shape
    zmin = np.inf
    if side < 2:
        r = 0 if side == 0 else nr - 1
        for j in range(c0, c1):
            if grp[r, j] != 0:
                zmin = min(zmin, float(z[r, j]))
    else:
        j = 0 if side == 2 else nc - 1
        for r in range(r0, r1):
            if grp[r, j] != 0:
                zmin = min(zmin, float(z[r, j]))
    return level - zmin if zmin < np.inf else -np.inf


@njit(cache=True, error_model="numpy", inline="always")
def _tile_dry(tm, fixed, edge_level, r0, r1, c0, c1, z, grp, dry, inf_on):
    """1 if the tile of rows [r0, r1) x columns [c0, c1), its deepest water *tm* (m), is
    dry (<= *dry*; exactly 0 under infiltration) and not held wet (*fixed*: it holds
    inflow cells; or it lies on a grid edge with a level boundary, *edge_level*), else 0
    (the CPU's :func:`tile_levels` and the GPU's ``tile_raw``)."""
    nr, nc = z.shape
    fx = fixed
    for side in range(4):
        if edge_level[side] != -np.inf and _on_edge(side, r0, r1, c0, c1, nr, nc):
            fx = fx or _edge_depth(side, r0, r1, c0, c1, z, grp, 0.0) > -np.inf
    isdry = tm <= dry and (not inf_on or tm <= 0.0)
    return 1 if (isdry and not fx) else 0


@njit(cache=True, error_model="numpy", inline="always")
def _tile_level(hm, edge_level, w0, w1, v0, v1, z, grp, grow, floor, c, cap, dt0, lm):
    """The largest level L <= *lm* with ``dt0 2^L`` (s) no longer than ``c / sqrt(h)`` nor
    than *cap* (s): h the deepest water *hm* (m) over the window rows [w0, w1) x columns
    [v0, v1), or a level boundary over the lowest bed of a grid edge the window reaches
    (*edge_level*), plus *grow*, at least *floor* (the CPU's :func:`tile_levels` and the
    GPU's ``tile_raw``)."""
    nr, nc = z.shape
    for side in range(4):
        lv = edge_level[side]
        if lv != -np.inf and _on_edge(side, w0, w1, v0, v1, nr, nc):
            hm = max(hm, _edge_depth(side, w0, w1, v0, v1, z, grp, lv))
    hh = max(hm + grow, floor)
    dtb = min(c / np.sqrt(hh), cap)
    lev = 0
    while lev < lm and dt0 * (1 << (lev + 1)) <= dtb:
        lev += 1
    return lev


@njit(cache=True, error_model="numpy")
def tile_levels(h, z, grp, B, c, dt0, lm, floor, grow, inflow_tile, edge_level, rain_on,
                inf_on, dry, tcap, bopen, tlev, tdry):  # fmt: skip
    """Choose the level of every tile for the next macro step, in place in *tlev*.

    Level L is the largest with ``dt0 2^L <= c / sqrt(h)``, h the deepest
    water over the tile and a halo of ``2^lm`` cells around it, the base steps
    of the macro step (plus *grow*, at least *floor*; where the halo reaches a
    grid edge with a level boundary, the boundary level over the lowest edge
    bed there: ``edge_level[side]``, -inf for none), at most *lm*;
    0 for tiles holding inflow cells, and, on a grid edge whose boundary is
    not closed (bit ``1 << side`` of *bopen*), no longer than the tile's cap *tcap*
    (s, :func:`step_caps`). Neighbouring tiles (8-connected) then
    differ by at most one level. Without rain, a tile that is dry (all depths
    <= *dry*, or all exactly 0 under infiltration) with its eight neighbours
    dry, no inflow and no level boundary is skipped (SKIP). Returns the
    number of active tiles.
    """
    nr, nc = h.shape
    ntr, ntc = tlev.shape
    halo = 1 << lm
    # maxima over row segments of g cells (tile edges and halo edges fall on segment
    # edges), then over the segments of a tile (with its halo) and over its rows: one
    # pass over the grid instead of one per tile and halo (maxima are exact in any order)
    g = B
    hb = halo
    while hb:
        g, hb = hb, g % hb
    ns = -(-nc // g)
    seg = np.empty((nr, ns))
    for r in range(nr):
        for sg in range(ns):
            m = 0.0
            for j in range(sg * g, min(sg * g + g, nc)):
                m = max(m, float(h[r, j]))
            seg[r, sg] = m
    own = np.empty((nr, ntc))
    win = np.empty((nr, ntc))
    for r in range(nr):
        for tj in range(ntc):
            a = tj * B // g
            b = -(-min(tj * B + B, nc) // g)
            m = 0.0
            for sg in range(a, b):
                m = max(m, seg[r, sg])
            own[r, tj] = m
            a = max(tj * B - halo, 0) // g
            b = -(-min(tj * B + B + halo, nc) // g)
            for sg in range(a, b):
                m = max(m, seg[r, sg])
            win[r, tj] = m
    for ti in range(ntr):
        r0 = ti * B
        r1 = min(r0 + B, nr)
        for tj in range(ntc):
            c0 = tj * B
            c1 = min(c0 + B, nc)
            tm = 0.0
            for r in range(r0, r1):
                tm = max(tm, own[r, tj])
            tdry[ti, tj] = _tile_dry(tm, inflow_tile[ti, tj] != 0, edge_level, r0, r1, c0, c1,
                                     z, grp, dry, inf_on)  # fmt: skip
    # the depth that can reach a tile within the macro step: information moves
    # at most one cell per base step, and the macro step has 2^lm of them
    for ti in range(ntr):
        for tj in range(ntc):
            r0 = max(ti * B - halo, 0)
            r1 = min(ti * B + B + halo, nr)
            c0 = max(tj * B - halo, 0)
            c1 = min(tj * B + B + halo, nc)
            hm = 0.0
            for r in range(r0, r1):
                hm = max(hm, win[r, tj])
            capped = _capped(bopen, ti * B, min(ti * B + B, nr), tj * B, min(tj * B + B, nc),
                             nr, nc)  # fmt: skip
            lev = _tile_level(hm, edge_level, r0, r1, c0, c1, z, grp, grow, floor, c,
                              tcap[ti, tj] if capped else np.inf, dt0, lm)  # fmt: skip
            tlev[ti, tj] = 0 if inflow_tile[ti, tj] != 0 else lev
    return smooth_levels(tlev, tdry, rain_on)


@njit(cache=True, error_model="numpy")
def smooth_levels(tlev, tdry, rain_on):
    """The last part of :func:`tile_levels`, in place in *tlev* (each tile's level from its
    own depths and slope, *tdry* whether it is dry): without rain, a dry tile with dry
    neighbours is skipped (SKIP); then neighbouring tiles (8-connected) are made to differ
    by at most one level. Returns the number of active tiles."""
    ntr, ntc = tlev.shape
    if not rain_on:
        for ti in range(ntr):
            for tj in range(ntc):
                ok = True
                for a in range(max(ti - 1, 0), min(ti + 2, ntr)):
                    for b in range(max(tj - 1, 0), min(tj + 2, ntc)):
                        if tdry[a, b] == 0:
                            ok = False
                if ok:
                    tlev[ti, tj] = SKIP
    changed = True
    while changed:
        changed = False
        for ti in range(ntr):
            for tj in range(ntc):
                lv = tlev[ti, tj]
                if lv == SKIP:
                    continue
                for a in range(max(ti - 1, 0), min(ti + 2, ntr)):
                    for b in range(max(tj - 1, 0), min(tj + 2, ntc)):
                        ln = tlev[a, b]
                        if ln != SKIP and lv > ln + 1:
                            lv = ln + 1
                if lv != tlev[ti, tj]:
                    tlev[ti, tj] = lv
                    changed = True
    n = 0
    for ti in range(ntr):
        for tj in range(ntc):
            n += tlev[ti, tj] != SKIP
    return n


@njit(cache=True, error_model="numpy")
def step_caps(z, grp, B, dx, beta, tcap):
    """The longest step, s, each tile may take on its slope, into *tcap*.

    With the global step's friction (the old ``|q|``), thin sheets of water on
    a slope S break into spurious roll waves when a step exceeds about ``beta
    sqrt(dx / (g S))`` (measured, docs/flood.md), whatever their depth, so the
    sqrt(g h) limit alone would let a tile of rain on a hillside step too
    long. Local steps of level >= 1 take the friction implicitly (:func:`_fric`)
    on interior faces, which removes that limit; the cap is kept for tiles on
    an open or level grid edge (:func:`tile_levels`), whose boundary faces keep
    the global friction. S is the steepest bed slope of the faces between two
    active cells of the same group that touch the tile's cells; inf where the
    tile is flat.
    """
    nr, nc = z.shape
    ntr, ntc = tcap.shape
    for ti in range(ntr):
        r0 = ti * B
        r1 = min(r0 + B, nr)
        for tj in range(ntc):
            c0 = tj * B
            c1 = min(c0 + B, nc)
            dz = 0.0
            for r in range(r0, r1):
                for j in range(c0, c1):
                    g0 = grp[r, j]
                    if g0 == 0:
                        continue
                    z0 = float(z[r, j])
                    if j + 1 < nc and grp[r, j + 1] == g0:
                        dz = max(dz, abs(float(z[r, j + 1]) - z0))
                    if j > 0 and grp[r, j - 1] == g0:
                        dz = max(dz, abs(float(z[r, j - 1]) - z0))
                    if r + 1 < nr and grp[r + 1, j] == g0:
                        dz = max(dz, abs(float(z[r + 1, j]) - z0))
                    if r > 0 and grp[r - 1, j] == g0:
                        dz = max(dz, abs(float(z[r - 1, j]) - z0))
            tcap[ti, tj] = beta * np.sqrt(dx * dx / (G * dz)) if dz > 0.0 else np.inf


@njit(cache=True, error_model="numpy")
def update_share(tlev, B, nr, nc):
    """Cell updates of a macro step at levels *tlev*, as a share of the global step's
    (a tile of level L updates its cells once per 2^L base steps; skipped tiles never)."""
    ntr, ntc = tlev.shape
    s = 0.0
    for ti in range(ntr):
        rows = min(ti * B + B, nr) - ti * B
        for tj in range(ntc):
            L = tlev[ti, tj]
            if L != SKIP:
                s += rows * (min(tj * B + B, nc) - tj * B) / (1 << L)
    return s / (nr * nc)


@njit(cache=True, error_model="numpy", inline="always")
def _y_bound(f, j, h, z, grp, nman, nsc, qy, bct, bcv, gdt, dry, inv_dx, theta):
    """New outward discharge on the boundary y-face (f, j), f = 0 or nr (as ``_ybound``)."""
    nr = h.shape[0]
    side = 0 if f == 0 else 1
    kind = bct[side]
    r = 0 if side == 0 else nr - 1
    ri = 1 if side == 0 else nr - 2
    sgn = -1.0 if side == 0 else 1.0
    if kind == BC_CLOSED or grp[r, j] != 1:
        return 0.0, sgn
    has_in = ri >= 0 and ri < nr and grp[ri, j] != 0
    eta_in = float(z[ri, j]) + h[ri, j] if has_in else 0.0
    nc_ = nman[0, 0] if nsc else nman[r, j]
    qout = _bnd_q(sgn * qy[f, j], sgn * qy[1 if side == 0 else r, j], kind, bcv[side],
                  float(h[r, j]), float(z[r, j]), eta_in, has_in, nc_ * nc_, gdt, dry, inv_dx,
                  theta)  # fmt: skip
    return qout, sgn


@njit(cache=True, error_model="numpy", inline="always")
def _run(t, m, tlev, B, nr, nc):
    """Band, first and end tile columns, level and cell extent of the run of *m* tiles at *t*."""
    ntc = tlev.shape[1]
    ti = t // ntc
    ta = t - ti * ntc
    tb = ta + m
    r0 = ti * B
    c0 = ta * B
    return ti, ta, tb, tlev[ti, ta], r0, min(r0 + B, nr), c0, min(tb * B, nc)


@njit(cache=True, error_model="numpy", inline="always")
def _x_owned(tlev, ti, ta, tb, L, c0, c1, nc):
    """Face columns [ja, jb) a run of tiles ta..tb-1 at level L owns on each of its rows."""
    ja = c0 if (c0 == 0 or _lev(tlev, ti, ta - 1) >= L) else c0 + 1
    jb = c1 + 1 if (c1 == nc or _lev(tlev, ti, tb) > L) else c1
    return ja, jb


@njit(cache=True, error_model="numpy", inline="always")
def _y_owned(f, r0, r1, nr, other, L):
    """Whether a tile of rows [r0, r1) at level L owns face row *f* (*other*: the level
    of the tile across)."""
    if f == r0:
        return r0 == 0 or other >= L
    if f == r1:
        return r1 == nr or other > L
    return True


@njit(cache=True, error_model="numpy", _nrt=False)
def _y_row(f, ca, cb, other, L, h, z, grp, nman, nsc, qx, qy, qyn, vy, bct, bcv, pd, n2, half,
           quarter, neg, dry_d, dt, gdt, dry, dx, inv_dx, hfb, pw, ds, qt, imp):  # fmt: skip
    """New discharges of y-faces (f, ca..cb-1) at level L (with *imp*, the friction implicit:
    :func:`_fric`); (inflow, outflow) m3 when f is a grid edge. Where the tile across
    (level *other*) is coarser, ``q dt`` goes into ``vy``; where it is skipped, the faces
    carry nothing."""
    nr = h.shape[0]
    vin = 0.0
    vout = 0.0
    if f == 0 or f == nr:
        for j in range(ca, cb):
            qout, sgn = _y_bound(f, j, h, z, grp, nman, nsc, qy, bct, bcv, gdt, dry, inv_dx,
                                 float(pd[D_THETA]))  # fmt: skip
            if qout > 0.0:
                vout += qout * dx * dt
            else:
                vin -= qout * dx * dt
            qyn[f, j] = sgn * qout
        return vin, vout
    n = cb - ca
    zN, hN, zS, hS = z[f - 1, ca:cb], h[f - 1, ca:cb], z[f, ca:cb], h[f, ca:cb]
    _y_hf(zN, hN, zS, hS, grp[f - 1, ca:cb], grp[f, ca:cb], neg, hfb)
    _pw(hfb, dry_d, n2, 0, n, pw)
    if not nsc:
        _n2_y(nman[f - 1, ca:cb], nman[f, ca:cb], half, pw)
    _y_ds(zN, hN, zS, hS, ds)
    _y_qt(qx[f - 1, ca : cb + 1], qx[f, ca : cb + 1], quarter, n, qt)
    if imp:
        _y_qi(hfb, pw, ds, qt, qy[f, ca:cb], qy[f - 1, ca:cb], qy[f + 1, ca:cb], pd,
              qyn[f, ca:cb])  # fmt: skip
    else:
        _y_q(hfb, pw, ds, qt, qy[f, ca:cb], qy[f - 1, ca:cb], qy[f + 1, ca:cb], pd,
             qyn[f, ca:cb])  # fmt: skip
    if other == SKIP:
        for j in range(ca, cb):
            qyn[f, j] = pd[D_ZERO]
    elif other > L:
        for j in range(ca, cb):
            vy[f, j] += float(qyn[f, j]) * dt
    return vin, vout


@njit(cache=True, error_model="numpy", inline="always")
def _x_edge(r, j, h, z, grp, nman, nsc, qx, qxn, bct, bcv, gdt, dry, inv_dx, dx, dt, theta):
    """New discharge of the grid-edge x-face *j* (0 or ncols) of row *r* into ``qxn``;
    returns (inflow, outflow) over the step *dt* (s), m3."""
    qout = _xbound(r, 2 if j == 0 else 3, h[r], z[r], grp[r], nman, nsc, qx[r], bct, bcv, gdt,
                   dry, inv_dx, 0, theta)  # fmt: skip
    qxn[r, j] = -qout if j == 0 else qout
    if qout > 0.0:
        return 0.0, qout * dx * dt
    return -(qout * dx * dt), 0.0


@njit(cache=True, error_model="numpy", _nrt=False)
def _phase_a(t, m, k, h, z, grp, nman, nsc, qx, qy, qxn, qyn, vx, vy, bct, bcvk, tlev, B, acc,
             q, pdl, wk, tcap):  # fmt: skip
    """New discharges of the faces a run of *m* tiles from tile *t* owns, at its level.

    The faces are computed a row at a time over the whole run (rows of
    consecutive tiles are contiguous in memory) with the row loops of the
    global step (:mod:`emtwin.kernels._flood_numba`), so that they vectorise
    and give the same numbers.
    """
    nr, nc = h.shape
    ti, ta, tb, L, r0, r1, c0, c1 = _run(t, m, tlev, B, nr, nc)
    dt = q[Q_DT0] * (1 << L)
    dx = q[Q_DX]
    dry = q[Q_DRY]
    gdt = G * dt
    inv_dx = 1.0 / dx
    pd = pdl[L]
    bcv = bcvk[k]
    n2 = pd[D_N2] if nsc else pd[D_ONE]
    half = pd[D_HALF]
    quarter = pd[D_QUARTER]
    neg = pd[D_ZERO] - pd[D_ONE]
    dry_d = pd[D_DRY]
    o = t * (B + 2)
    w = m * (B + 2)
    hfb, pw, ds, qt = wk[0, o : o + w], wk[1, o : o + w], wk[2, o : o + w], wk[3, o : o + w]
    ja, jb = _x_owned(tlev, ti, ta, tb, L, c0, c1, nc)
    imp = implicit(L, tcap[ti, ta], q[Q_DT0])  # (the same for every tile of the run: runs)
    lw = _lev(tlev, ti, ta - 1)
    le = _lev(tlev, ti, tb)
    vin = 0.0
    vout = 0.0
    # y-faces: the band's edge rows tile by tile (the tiles across differ), the rest whole
    for f in range(r0, r1 + 1):
        if f in (r0, r1):
            for u in range(ta, tb):
                other = _lev(tlev, ti - 1, u) if f == r0 else _lev(tlev, ti + 1, u)
                if not _y_owned(f, r0, r1, nr, other, L):
                    continue
                a, b = _y_row(f, u * B, min(u * B + B, nc), other, L, h, z, grp, nman, nsc, qx,
                              qy, qyn, vy, bct, bcv, pd, n2, half, quarter, neg, dry_d, dt, gdt,
                              dry, dx, inv_dx, hfb, pw, ds, qt, imp)  # fmt: skip
                vin += a
                vout += b
        else:
            _y_row(f, c0, c1, L, L, h, z, grp, nman, nsc, qx, qy, qyn, vy, bct, bcv, pd, n2, half,
                   quarter, neg, dry_d, dt, gdt, dry, dx, inv_dx, hfb, pw, ds, qt, imp)  # fmt: skip
    # x-faces: the interior ones xa..xb-1 a row at a time, then the grid edges
    xa = max(ja, 1)
    xb = min(jb, nc)
    for r in range(r0, r1):
        if xb > xa:
            zr, hr_ = z[r, xa - 1 : xb], h[r, xa - 1 : xb]
            mm = xb - xa + 1
            _x_hf(zr, hr_, grp[r, xa - 1 : xb], neg, hfb)
            _pw(hfb, dry_d, n2, 1, mm, pw)
            if not nsc:
                _n2_x(nman[r, xa - 1 : xb], half, pw)
            _x_ds(zr, hr_, ds)
            _x_qt(qy[r, xa - 1 : xb], qy[r + 1, xa - 1 : xb], quarter, qt)
            if imp:
                _x_qi(hfb, pw, ds, qt, qx[r, xa - 1 : xb + 1], pd, qxn[r, xa - 1 : xb + 1])
            else:
                _x_q(hfb, pw, ds, qt, qx[r, xa - 1 : xb + 1], pd, qxn[r, xa - 1 : xb + 1])
        for j in (c0, c1):
            if j < ja or j >= jb or j == 0 or j == nc:
                continue
            other = lw if j == c0 else le
            if other == SKIP:
                qxn[r, j] = pd[D_ZERO]
            elif other > L:
                vx[r, j] += float(qxn[r, j]) * dt
        for j in (0, nc):
            if j < ja or j >= jb:
                continue
            a, b = _x_edge(r, j, h, z, grp, nman, nsc, qx, qxn, bct, bcv, gdt, dry, inv_dx, dx,
                           dt, float(pd[D_THETA]))  # fmt: skip
            vin += a
            vout += b
    acc[t, A_VIN] += vin
    acc[t, A_VOUT] += vout


@njit(cache=True, error_model="numpy", inline="always")
def _commit_y(f, ti, ta, tb, L, r0, r1, c0, c1, B, nr, nc, tlev, qy, qyn):
    """Copy the new discharges of y-face row *f* that a run owns into ``qy``."""
    if f in (r0, r1):
        for u in range(ta, tb):
            other = _lev(tlev, ti - 1, u) if f == r0 else _lev(tlev, ti + 1, u)
            if _y_owned(f, r0, r1, nr, other, L):
                for j in range(u * B, min(u * B + B, nc)):
                    qy[f, j] = qyn[f, j]
    else:
        for j in range(c0, c1):
            qy[f, j] = qyn[f, j]


@njit(cache=True, error_model="numpy", _nrt=False)
def _commit(t, m, h, qx, qy, qxn, qyn, tlev, B):
    """Copy the new discharges of the faces a run of tiles owns into ``qx``/``qy``."""
    nr, nc = h.shape
    ti, ta, tb, L, r0, r1, c0, c1 = _run(t, m, tlev, B, nr, nc)
    for f in range(r0, r1 + 1):
        _commit_y(f, ti, ta, tb, L, r0, r1, c0, c1, B, nr, nc, tlev, qy, qyn)
    ja, jb = _x_owned(tlev, ti, ta, tb, L, c0, c1, nc)
    for r in range(r0, r1):
        for j in range(ja, jb):
            qx[r, j] = qxn[r, j]


@njit(cache=True, error_model="numpy", _nrt=False)
def _finer_faces(t, m, h, qx, qy, qxn, qyn, tlev, B):
    """Copy into ``qxn``/``qyn`` the faces a run of tiles at level 1 shares with tiles at
    level 0, from ``qx``/``qy``, where those tiles wrote them in an odd sub-step
    (:func:`macro`)."""
    nr, nc = h.shape
    ti, ta, tb, L, r0, r1, c0, c1 = _run(t, m, tlev, B, nr, nc)
    for j in (c0, c1):
        if _lev(tlev, ti, ta - 1 if j == c0 else tb) == 0:
            for r in range(r0, r1):
                qxn[r, j] = qx[r, j]
    for u in range(ta, tb):
        for f in (r0, r1):
            if _lev(tlev, ti - 1 if f == r0 else ti + 1, u) == 0:
                for j in range(u * B, min(u * B + B, nc)):
                    qyn[f, j] = qy[f, j]


@njit(cache=True, error_model="numpy", inline="always")
def _take_y(f, ca, cb, vy, vcy, dt, dst, off):
    """Volumes of a finer tile over y-faces (f, ca..cb-1) as discharges into dst[off:]; reset."""
    for j in range(ca, cb):
        dst[off + j - ca] = vy[f, j] / dt
        vcy[f, j] = vy[f, j]
        vy[f, j] = 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _records(r, c0, c1, hr_, qxr, qyN, qyS, pd, sp, maxd, maxs, maxhr, maxa, arr, arrival,
             t_end):  # fmt: skip
    """The records of cells c0..c1-1 of row *r* after their continuity update, from the
    new depths *hr_* and the discharges of their faces (as the global step); returns
    (the row's max depth m, its count of negative depths)."""
    hm, nn = _stats(hr_)
    _rec_depth(hr_, maxd[r, c0:c1])
    _rec_speed(hr_, qxr, qyN, qyS, pd, sp, maxs[r, c0:c1])
    _rec_hazard(hr_, sp, pd, maxhr[r, c0:c1], maxa[r, c0:c1])
    _rec_arrival(hr_, arr[r, c0:c1], arrival, t_end)
    return hm, nn


@njit(cache=True, error_model="numpy", _nrt=False)
def _phase_c(t, m, k, h, grp, rmult, rsc, qx, qy, qxn, qyn, vx, vy, vcx, vcy, maxd, maxs,
             maxhr, maxa, arr, tlev, B, acc, q, pdl, t_end, wk, wf):  # fmt: skip
    """Continuity and records of the cells of a run of tiles whose step ends at sub-step k.

    Row loops of the global step over the whole run; on a face to a finer
    tile the discharge is the accumulated ``q dt`` of the finer side over this
    step divided by the step (in float64 work rows).
    """
    nr, nc = h.shape
    ti, ta, tb, L, r0, r1, c0, c1 = _run(t, m, tlev, B, nr, nc)
    dt = q[Q_DT0] * (1 << L)
    dx = q[Q_DX]
    dtdx = dt / dx
    rain_dt = q[Q_RAIN] * dt
    inf_dt = q[Q_INF] * dt
    pd = pdl[L]
    n = c1 - c0
    finer_w = _lev(tlev, ti, ta - 1) < L
    finer_e = _lev(tlev, ti, tb) < L
    finer_n = False
    finer_s = False
    for u in range(ta, tb):
        finer_n = finer_n or _lev(tlev, ti - 1, u) < L
        finer_s = finer_s or _lev(tlev, ti + 1, u) < L
    o = t * (B + 2)
    sp = wk[4, o : o + m * (B + 2)]
    o = t * (B + 1)
    w = m * (B + 1)
    ax, ayn, ays = wf[0, o : o + w], wf[1, o : o + w], wf[2, o : o + w]
    infil = 0.0
    hmax = 0.0
    bad = 0.0
    nneg = 0
    for r in range(r0, r1):
        hr_, gr = h[r, c0:c1], grp[r, c0:c1]
        rrow = rmult[0] if rsc else rmult[r, c0:c1]
        qxr, qyN, qyS = qxn[r, c0 : c1 + 1], qyn[r, c0:c1], qyn[r + 1, c0:c1]
        if inf_dt > 0.0:
            infil += _infil(hr_, gr, rain_dt, rrow, rsc, inf_dt)
        fy = (r == r0 and finer_n) or (r == r1 - 1 and finer_s)
        if finer_w or finer_e or fy:
            for j in range(n + 1):
                ax[j] = qxr[j]
            for j in range(n):
                ayn[j] = qyN[j]
                ays[j] = qyS[j]
            if finer_w:
                ax[0] = vx[r, c0] / dt
                vcx[r, c0] = vx[r, c0]
                vx[r, c0] = 0.0
            if finer_e:
                ax[n] = vx[r, c1] / dt
                vcx[r, c1] = vx[r, c1]
                vx[r, c1] = 0.0
            if fy:  # the band's edge rows: tile by tile, from the finer tiles across
                for u in range(ta, tb):
                    ca = u * B
                    cb = min(ca + B, nc)
                    if r == r0 and _lev(tlev, ti - 1, u) < L:
                        _take_y(r, ca, cb, vy, vcy, dt, ayn, ca - c0)
                    if r == r1 - 1 and _lev(tlev, ti + 1, u) < L:
                        _take_y(r + 1, ca, cb, vy, vcy, dt, ays, ca - c0)
            _cont(hr_, gr, ax, ayn, ays, rain_dt, rrow, rsc, inf_dt, dtdx)
        else:
            _cont(hr_, gr, qxr, qyN, qyS, rain_dt, rrow, rsc, inf_dt, dtdx)
        hm, nn = _records(r, c0, c1, hr_, qxr, qyN, qyS, pd, sp, maxd, maxs, maxhr, maxa, arr,
                          q[Q_ARRIVAL], t_end)  # fmt: skip
        hmax = max(hmax, hm)
        bad += hm - hm
        nneg += nn
    acc[t, A_INF] += infil
    acc[t, A_HMAX] = hmax
    acc[t, A_BAD] += bad
    acc[t, A_NNEG] = nneg
    return (r1 - r0) * n


@njit(cache=True, error_model="numpy", inline="always")
def implicit(L, cap, dt0):
    """Whether a tile at level L with slope cap *cap* (s) takes the friction implicitly
    (:func:`_fric`): where its step ``dt0 2^L`` (s) exceeds the cap, beyond which the
    global step's friction would ring (:func:`step_caps`), and L >= 1. Elsewhere local
    steps use the global step's face formula unchanged; at level 0, whose step is the
    global one, always (the reference, bit for bit)."""
    return L > 0 and dt0 * (1 << L) > cap


@njit(cache=True, error_model="numpy")
def runs(tlev, maxrun, rt, rn, tcap, dt0):
    """Cut each band of tiles into runs: consecutive active tiles at one level, at most
    *maxrun* long, whose steps (``dt0 2^L``, s) all exceed their slope caps *tcap* or all
    do not (:func:`implicit`). First tiles into *rt*, lengths into *rn*; returns the
    number of runs."""
    ntr, ntc = tlev.shape
    nrun = 0
    for ti in range(ntr):
        tj = 0
        while tj < ntc:
            L = tlev[ti, tj]
            if L == SKIP:
                tj += 1
                continue
            te = tj + 1
            imp = implicit(L, tcap[ti, tj], dt0)
            while (te < ntc and te - tj < maxrun and tlev[ti, te] == L
                   and implicit(L, tcap[ti, te], dt0) == imp):  # fmt: skip
                te += 1
            rt[nrun] = ti * ntc + tj
            rn[nrun] = te - tj
            nrun += 1
            tj = te
    return nrun


@njit(cache=True, error_model="numpy")
def _lists(k, tlev, rt, nrun, la, lc, ofs):
    """The runs at work in sub-step k: those doing phase A (indices into *la*), those
    doing phase A or C (into *lc*), each in band order; ``ofs[0|1, ti]`` is where band
    ti starts in *la* and in *lc*. Returns the number in *lc*."""
    ntc = tlev.shape[1]
    ntr = tlev.shape[0]
    na = 0
    nc_ = 0
    b = 0
    ofs[0, 0] = 0
    ofs[1, 0] = 0
    for i in range(nrun):
        t = rt[i]
        ti = t // ntc
        while b < ti:
            b += 1
            ofs[0, b] = na
            ofs[1, b] = nc_
        m = (1 << tlev[ti, t % ntc]) - 1
        a = (k & m) == 0
        e = ((k + 1) & m) == 0
        if a:
            la[na] = i
            na += 1
        if a or e:
            lc[nc_] = i
            nc_ += 1
    while b < ntr:
        b += 1
        ofs[0, b] = na
        ofs[1, b] = nc_
    return nc_


@njit(cache=True, error_model="numpy", inline="always")
def _face_lf(tlev, B, r, j, side, Lc):
    """Level of a face of cell (r, j) in a tile at level Lc: Lc, or the finer neighbour's."""
    ti = r // B
    tj = j // B
    if side == 0:
        ln = _lev(tlev, (r - 1) // B, tj) if r > 0 else SKIP
    elif side == 1:
        ln = _lev(tlev, (r + 1) // B, tj)
    elif side == 2:
        ln = _lev(tlev, ti, (j - 1) // B) if j > 0 else SKIP
    else:
        ln = _lev(tlev, ti, (j + 1) // B)
    return ln if ln < Lc else Lc, ln


@njit(cache=True, error_model="numpy", inline="always")
def _nbr(r, j, side):
    """The cell across face *side* (0 north, 1 south, 2 west, 3 east) of cell (r, j)."""
    if side == 0:
        return r - 1, j
    if side == 1:
        return r + 1, j
    if side == 2:
        return r, j - 1
    return r, j + 1


@njit(cache=True, error_model="numpy")
def fix_negative_lts(k, h, qx, qy, qxn, qyn, vx, vy, vcx, vcy, tlev, B, dt0, dx, rt, rn, lc,
                     nlc, acc, stack, instack, a, lf):  # fmt: skip
    """Remove negative depths left by the cells that ended a step (as ``fix_negative``).

    A cell of level Lc left at -D < 0 has its outflow over its step scaled by
    ``s = 1 - D/O`` (O the outflow volume, on each face the discharge at its
    level or the accumulated volume of a finer face). The water not sent is
    taken back from the receiving cell where its step also ended at sub-step
    k (it has taken the water in; it may go negative in turn), else from the
    face accumulator it will read at the end of its step, or from the
    boundary outflow. Returns (boundary outflow removed m3,
    volume that could not be placed m3).

    Across a level interface the two cells see a face differently (the fine
    cell its last fine step's discharge, the coarse cell the volume of its
    whole step), so both may count it as outflow; scaling would then hand the
    same deficit back and forth, shrinking the face by D each time (as many
    rounds as O/D, millions for a round-off deficit). So a cell is scaled at
    most :data:`MAX_SCALINGS` times per call (where the deficit is shared
    among several receivers it fades within a few); when it is negative
    again, its deficit is taken from the cells around it in proportion to
    their depths, as for a cell with no outflow; and so is the part of a
    deficit larger than the cell's whole outflow of the step (a finer cell
    that gave back water it had already passed on). *stack* holds 2 x cells: the
    cells to do from the front, those scaled from the back; *instack* holds
    per cell 1 (to do) + 2 x the number of scalings. *a* (float64) and *lf*
    (int64), 4 each, are work arrays (so that the same source compiles for a
    GPU thread, :mod:`emtwin.kernels._flood_cuda_lts`).
    """
    nr, nc = h.shape
    ntc = tlev.shape[1]
    area = dx * dx
    top = 0
    for i in range(nlc):
        t = rt[lc[i]]
        if acc[t, A_NNEG] == 0:
            continue
        ti = t // ntc
        tj = t - ti * ntc
        for r in range(ti * B, min(ti * B + B, nr)):
            for j in range(tj * B, min((tj + rn[lc[i]]) * B, nc)):
                if h[r, j] < 0.0 and instack[r * nc + j] == 0:
                    stack[top] = r * nc + j
                    instack[r * nc + j] = 1
                    top += 1
    bcorr = 0.0
    lost = 0.0
    ns = stack.shape[0]
    nv = 0
    while top > 0:
        top -= 1
        cell = stack[top]
        instack[cell] &= 254
        r = cell // nc
        j = cell - r * nc
        hc = float(h[r, j])
        if hc >= 0.0:
            continue
        if instack[cell] >= 2 * MAX_SCALINGS:  # bounced: from the cells around it
            h[r, j] = 0.0
            lost += _from_neighbours(h, r, j, -hc, REACH) * area
            continue
        if instack[cell] == 0:
            stack[ns - 1 - nv] = cell
            nv += 1
        instack[cell] += 2
        Lc = tlev[r // B, j // B]
        dt = dt0 * (1 << Lc)
        dtdx = dt / dx
        for side in range(4):
            lfs, _ = _face_lf(tlev, B, r, j, side, Lc)
            lf[side] = lfs
            if side == 0:
                a[side] = -(float(qy[r, j]) if lfs == Lc else vcy[r, j] / dt)
            elif side == 1:
                a[side] = float(qy[r + 1, j]) if lfs == Lc else vcy[r + 1, j] / dt
            elif side == 2:
                a[side] = -(float(qx[r, j]) if lfs == Lc else vcx[r, j] / dt)
            else:
                a[side] = float(qx[r, j + 1]) if lfs == Lc else vcx[r, j + 1] / dt
        out = (max(a[2], 0.0) + max(a[3], 0.0) + max(a[0], 0.0) + max(a[1], 0.0)) * dtdx
        h[r, j] = 0.0
        s = min(max(1.0 + hc / out, 0.0), 1.0) if out > 0.0 else 0.0
        cut = 1.0 - s
        for side in range(4):
            ao = a[side]  # outward
            if ao <= 0.0:
                continue
            red = ao * cut * dtdx  # depth not sent through this face
            sg = 1.0 if (side == 1 or side == 3) else -1.0
            if side == 0:
                fr, fj, rr, jj = r, j, r - 1, j
            elif side == 1:
                fr, fj, rr, jj = r + 1, j, r + 1, j
            elif side == 2:
                fr, fj, rr, jj = r, j, r, j - 1
            else:
                fr, fj, rr, jj = r, j + 1, r, j + 1
            if side < 2:
                if lf[side] == Lc:
                    qy[fr, fj] = qy[fr, fj] * s
                    qyn[fr, fj] = qy[fr, fj]
                else:
                    vcy[fr, fj] = vcy[fr, fj] * s
            else:
                if lf[side] == Lc:
                    qx[fr, fj] = qx[fr, fj] * s
                    qxn[fr, fj] = qx[fr, fj]
                else:
                    vcx[fr, fj] = vcx[fr, fj] * s
            if rr < 0 or rr >= nr or jj < 0 or jj >= nc:
                bcorr += red * area
                continue
            ln = tlev[rr // B, jj // B]
            if ln != SKIP and ((k + 1) & ((1 << ln) - 1)) != 0:  # a coarser receiver
                # that has not ended its step reads the accumulator later
                if side < 2:
                    vy[fr, fj] -= sg * red * dx
                else:
                    vx[fr, fj] -= sg * red * dx
                continue
            h[rr, jj] -= red
            nb = rr * nc + jj
            if h[rr, jj] < 0.0 and (instack[nb] & 1) == 0:
                stack[top] = nb
                instack[nb] |= 1
                top += 1
        if -hc > out:
            # deeper below zero than all its outflow of this step (none, or some): a
            # finer cell that passed on, in earlier base steps, water a coarser cell
            # has now taken back; the rest of the deficit is with its neighbours
            lost += _from_neighbours(h, r, j, -hc - out, REACH) * area
    for i in range(nv):
        instack[stack[ns - 1 - i]] = 0
    return bcorr, lost


@njit(cache=True, error_model="numpy", inline="always")
def _step_c(t, m, k, h, grp, rmult, rsc, qx, qy, qxn, qyn, vx, vy, vcx, vcy, maxd, maxs, maxhr,
            maxa, arr, tlev, B, acc, q, pdl, t_end, wk, wf, pp):  # fmt: skip
    """Second half of sub-step k for the run of *m* tiles from tile *t*: copy its new
    faces where its step began, continuity and records where it ends (both at level
    0). With *pp*, the level-0 faces alternate between the two buffers instead of
    being copied (:func:`macro`). Returns the cells updated. (At most 30 arguments:
    a call with more is compiled as a call with ``*args``, which Numba does not
    inline.)"""
    L = tlev[t // tlev.shape[1], t % tlev.shape[1]]
    msk = (1 << L) - 1
    a = (k & msk) == 0  # its step begins at k
    e = ((k + 1) & msk) == 0  # ... ends at k
    if a:
        if not (pp and L == 0):
            _commit(t, m, h, qx, qy, qxn, qyn, tlev, B)
        acc[t, A_NNEG] = 0
    n = 0
    if e:
        odd = pp and (k & 1) == 1
        if odd and L == 1:  # its records read the level-0 faces on its edges from qxn/qyn
            _finer_faces(t, m, h, qx, qy, qxn, qyn, tlev, B)
        sw = odd and L == 0  # its new faces are in qx/qy
        n = _phase_c(t, m, k, h, grp, rmult, rsc, qxn if sw else qx, qyn if sw else qy,
                     qx if sw else qxn, qy if sw else qyn, vx, vy, vcx, vcy, maxd, maxs, maxhr,
                     maxa, arr, tlev, B, acc, q, pdl, t_end, wk, wf)  # fmt: skip
    return n


@njit(cache=True, error_model="numpy", inline="always")
def _a_band(b, k, h, z, grp, nman, nsc, qx, qy, qxn, qyn, vx, vy, bct, bcvk, tlev, B, acc, q,
            pdl, rt, rn, la, ofs, wk, tcap, pp):  # fmt: skip
    """Phase A of the runs of band *b* whose step begins at sub-step k. With *pp*, in odd
    sub-steps (where only level 0 runs) from ``qxn``/``qyn`` into ``qx``/``qy``
    (:func:`macro`)."""
    sw = pp and (k & 1) == 1
    for i in range(ofs[0, b], ofs[0, b + 1]):
        _phase_a(rt[la[i]], rn[la[i]], k, h, z, grp, nman, nsc, qxn if sw else qx,
                 qyn if sw else qy, qx if sw else qxn, qy if sw else qyn, vx, vy, bct, bcvk,
                 tlev, B, acc, q, pdl, wk, tcap)  # fmt: skip


@njit(cache=True, error_model="numpy", _nrt=False)
def _bands(b0, b1, pre, k, h, z, grp, nman, nsc, rmult, rsc, qx, qy, qxn, qyn, vx, vy, vcx, vcy,
           maxd, maxs, maxhr, maxa, arr, bct, bcvk, tlev, B, acc, q, pdl, t_end, rt, rn, la, lc,
           ofs, wk, wf, tcap, pp):  # fmt: skip
    """Sub-step k for bands b0..b1-1, band by band: phase A of band b + 1, then the second
    half (:func:`_step_c`) of band b, so that what phase A wrote is still in cache when
    it is read. The order keeps every read of the old values before they change: phase
    A of a band reads the rows next to it, which only the second half of those bands
    changes. With *pre*, phase A of bands b0 and b1 - 1 was done already (before any
    band of a neighbouring range changed anything). Returns the cells updated."""
    if not pre:
        _a_band(b0, k, h, z, grp, nman, nsc, qx, qy, qxn, qyn, vx, vy, bct, bcvk, tlev, B, acc,
                q, pdl, rt, rn, la, ofs, wk, tcap, pp)  # fmt: skip
    n = 0
    for b in range(b0, b1):
        if b + 1 < b1 and not (pre and b + 1 == b1 - 1):
            _a_band(b + 1, k, h, z, grp, nman, nsc, qx, qy, qxn, qyn, vx, vy, bct, bcvk, tlev,
                    B, acc, q, pdl, rt, rn, la, ofs, wk, tcap, pp)  # fmt: skip
        for i in range(ofs[1, b], ofs[1, b + 1]):
            n += _step_c(rt[lc[i]], rn[lc[i]], k, h, grp, rmult, rsc, qx, qy, qxn, qyn, vx, vy,
                         vcx, vcy, maxd, maxs, maxhr, maxa, arr, tlev, B, acc, q, pdl, t_end, wk,
                         wf, pp)  # fmt: skip
    return n


@njit(parallel=True, cache=True, error_model="numpy")
def _substep_parallel(k, h, z, grp, nman, nsc, rmult, rsc, qx, qy, qxn, qyn, vx, vy, vcx, vcy,
                      maxd, maxs, maxhr, maxa, arr, bct, bcvk, tlev, B, acc, q, pdl, t_end, rt,
                      rn, la, lc, ofs, cnt, wk, wf, nth, tcap, pp):  # fmt: skip
    """Sub-step k (:func:`_bands`) with the bands cut into one contiguous range per thread:
    first phase A of each range's first and last band (their neighbours across the
    range's edges are in other ranges), then each range as :func:`_bands`. A range of
    whole bands, not runs: runs side by side in a band share cache lines at their ends
    (rows run on across them), and threads writing both would pass those lines back
    and forth. *nth*: the number of threads."""
    ntr = tlev.shape[0]
    nt = min(nth, ntr)
    for c in prange(nt):
        b0 = c * ntr // nt
        b1 = (c + 1) * ntr // nt
        _a_band(b0, k, h, z, grp, nman, nsc, qx, qy, qxn, qyn, vx, vy, bct, bcvk, tlev, B, acc,
                q, pdl, rt, rn, la, ofs, wk, tcap, pp)  # fmt: skip
        if b1 - 1 > b0:
            _a_band(b1 - 1, k, h, z, grp, nman, nsc, qx, qy, qxn, qyn, vx, vy, bct, bcvk, tlev,
                    B, acc, q, pdl, rt, rn, la, ofs, wk, tcap, pp)  # fmt: skip
    for c in prange(nt):
        b0 = c * ntr // nt
        b1 = (c + 1) * ntr // nt
        cnt[c] = _bands(b0, b1, True, k, h, z, grp, nman, nsc, rmult, rsc, qx, qy, qxn, qyn, vx,
                        vy, vcx, vcy, maxd, maxs, maxhr, maxa, arr, bct, bcvk, tlev, B, acc, q,
                        pdl, t_end, rt, rn, la, lc, ofs, wk, wf, tcap, pp)  # fmt: skip
    n = 0
    for c in range(nt):
        n += cnt[c]
    return n


@njit(cache=True, error_model="numpy")
def _add_inflow(h, rows, cols, dd):
    for i in range(rows.shape[0]):
        h[rows[i], cols[i]] += dd[i]


@njit(cache=True, error_model="numpy")
def macro(h, z, grp, nman, nsc, rmult, rsc, qx, qy, qxn, qyn, vx, vy, vcx, vcy, maxd, maxs,
          maxhr, maxa, arr, bct, bcvk, tlev, B, acc, q, pdl, tks, in_rows, in_cols, ddk,
          maxrun, rt, rn, la, lc, cnt, stack, instack, wk, wf, nth, tcap, alt):  # fmt: skip
    """One macro step of N = len(tks) - 1 base steps; see the module docstring.

    *nth*: the number of threads to spread the bands of tiles over (0 or 1: none).
    *alt*: whether the level-0 faces alternate between the buffers (when N is even)
    instead of being copied; the numbers are the same either way.
    Returns (h_max m (NaN or inf when a depth is not finite), boundary inflow m3,
    boundary outflow m3, infiltration m3, volume not placed by the negative-depth
    repair m3, cell updates, base steps that needed the negative-depth repair).
    """
    nk = tks.shape[0] - 1
    acc[:, :] = 0.0
    bcorr = 0.0
    lost = 0.0
    cells = 0
    nrep = 0
    nrun = runs(tlev, maxrun, rt, rn, tcap, q[Q_DT0])
    ofs = np.zeros((2, tlev.shape[0] + 1), np.int64)
    fa = np.zeros(4)
    fl = np.zeros(4, np.int64)
    # level-0 faces alternate between the buffers (even sub-steps read qx/qy and write
    # qxn/qyn, odd ones the other way) instead of being copied: over an even number of
    # sub-steps they end in qx/qy (see the module docstring)
    pp = alt and nk % 2 == 0
    for k in range(nk):
        if in_rows.shape[0] > 0:
            _add_inflow(h, in_rows, in_cols, ddk[k])
        nlc = _lists(k, tlev, rt, nrun, la, lc, ofs)
        if nth > 1:
            cells += _substep_parallel(k, h, z, grp, nman, nsc, rmult, rsc, qx, qy, qxn, qyn,
                                       vx, vy, vcx, vcy, maxd, maxs, maxhr, maxa, arr, bct, bcvk,
                                       tlev, B, acc, q, pdl, tks[k + 1], rt, rn, la, lc, ofs,
                                       cnt, wk, wf, nth, tcap, pp)
        else:
            cells += _bands(0, tlev.shape[0], False, k, h, z, grp, nman, nsc, rmult, rsc, qx, qy,
                            qxn, qyn, vx, vy, vcx, vcy, maxd, maxs, maxhr, maxa, arr, bct, bcvk,
                            tlev, B, acc, q, pdl, tks[k + 1], rt, rn, la, lc, ofs, wk, wf, tcap,
                            pp)
        neg = 0
        for i in range(nlc):
            neg += acc[rt[lc[i]], A_NNEG]
        if neg:
            sw = pp and (k & 1) == 0  # only level 0 ends here, its new faces in qxn/qyn
            b, lo = fix_negative_lts(k, h, qxn if sw else qx, qyn if sw else qy,
                                     qx if sw else qxn, qy if sw else qyn, vx, vy, vcx, vcy,
                                     tlev, B, q[Q_DT0], q[Q_DX], rt, rn, lc, nlc, acc, stack,
                                     instack, fa, fl)  # fmt: skip
            bcorr += b
            lost += lo
            nrep += 1
    vin = 0.0
    vout = 0.0
    inf = 0.0
    hmax = 0.0
    bad = 0.0
    ntc = tlev.shape[1]
    for t in range(acc.shape[0]):
        if tlev[t // ntc, t % ntc] == SKIP:
            continue
        vin += acc[t, A_VIN]
        vout += acc[t, A_VOUT]
        inf += acc[t, A_INF]
        hmax = max(hmax, acc[t, A_HMAX])
        bad += acc[t, A_BAD]
    return hmax + bad, vin, vout - bcorr, inf * q[Q_DX] * q[Q_DX], lost, cells, nrep
