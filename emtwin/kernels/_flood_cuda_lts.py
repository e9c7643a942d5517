"""Numba CUDA kernels of local time stepping (private; see docs/gpu.md and docs/flood.md).

The scheme of :mod:`emtwin.kernels._flood_lts` (tiles of ``B x B`` cells,
each stepping ``dt0 2^L`` within a macro step of ``2^Lm`` base steps; a face
runs at the finer level of its two tiles; on a face to a coarser tile
``q dt`` is summed for the coarser side; a face to a skipped tile carries
nothing), laid out for a GPU: one thread per face or per cell, and the tile
levels read from a small array instead of lists of runs.

Per macro step:

- :func:`tile_raw`, one thread per tile: the level from the deepest water over
  the tile and its halo and from the tile's slope cap, and whether the tile is
  dry (the CPU's :func:`~emtwin.kernels._flood_lts.tile_levels` before its
  last part). The host reads these two small arrays back and finishes them
  with :func:`~emtwin.kernels._flood_lts.smooth_levels` (skipping, at most one
  level between neighbours), so the levels are the CPU's exactly.

Per sub-step k, three launches and nothing read back:

1. :func:`faces_lts`: every face whose level L has ``k % 2^L == 0`` gets its
   new discharge in ``qxn``/``qyn`` from the old state (the same face
   functions as the global step, with ``g dt`` of its level, and the friction
   implicit where the owner tile steps beyond its slope cap); ``q dt`` into
   ``vx``/``vy`` where the tile across is coarser; boundary volumes into the
   ledger accumulators.
2. :func:`cells_lts`: every face that began its step at k is copied to
   ``qx``/``qy``; every cell whose step ends at k (``(k + 1) % 2^L == 0``)
   takes continuity with, on each face, the new discharge where the face runs
   at the cell's level, else the finer side's accumulated ``q dt`` divided by
   its step (then reset), and its records. A cell left below zero adds one
   to its run's count and to the sub-step's total.
3. :func:`repair_lts`, one thread: returns at once unless the total is set,
   else runs the CPU's repair
   (:func:`~emtwin.kernels._flood_lts.fix_negative_lts`, the same Python
   source compiled for the device) over the runs that ended at k, in the
   CPU's order.

After the last sub-step the host reads one 24-byte buffer: h_max (inf if a
depth was not finite), and the number of sub-steps that needed the repair.
"""

from __future__ import annotations

import math
import types

from numba import cuda, float64, int64

from emtwin.kernels import _flood_cuda as _k
from emtwin.kernels import _flood_lts as _lts
from emtwin.kernels._flood_cuda import (
    A_IN,  # noqa: F401 - (read by add_volumes, given this module's globals below)
    A_INF,
    A_LOST,
    A_OUT,
    C_ZERO,
    MAX_THREADS,
    _m73_f32,
    _m73_f64,
    _max,
    _min,
    _rebind,
    face_kernel,
    records,
    x_face,
    y_face,
)
from emtwin.kernels._flood_lts import A_NNEG, SKIP

# Indices into the float64 buffer ``lbuf`` the host reads after a macro step.
L_HMAX, L_NNEG, L_REPAIRS = range(3)

# The CPU's helpers, the same Python source compiled for the device, with the
# built-in max/min bound to the device versions (see _flood_cuda).
_lev = cuda.jit(device=True)(_rebind(_lts._lev, "_lev_dev"))
_on_edge = cuda.jit(device=True)(_rebind(_lts._on_edge, "_on_edge_dev"))
_implicit = cuda.jit(device=True)(_rebind(_lts.implicit, "_implicit_dev"))
_capped = cuda.jit(device=True)(_rebind(_lts._capped, "_capped_dev", _on_edge=_on_edge))
_edge_depth = cuda.jit(device=True)(_rebind(_lts._edge_depth, "_edge_depth_dev", min=_min))
_tile_dry = cuda.jit(device=True)(_rebind(_lts._tile_dry, "_tile_dry_dev", _on_edge=_on_edge,
                                           _edge_depth=_edge_depth))  # fmt: skip
_tile_level = cuda.jit(device=True)(_rebind(
    _lts._tile_level, "_tile_level_dev", np=math, max=_max, min=_min, _on_edge=_on_edge,
    _edge_depth=_edge_depth))  # fmt: skip
_face_lf = cuda.jit(device=True)(_rebind(_lts._face_lf, "_face_lf_dev", _lev=_lev))
_from_neighbours = _k.from_neighbours_dev
# The block reduction and the ledger's atomics use the cuda module, which the simulator
# swaps for its own in the globals of the running kernel's module only (and, per call,
# in a device function's own module, which its threads would then race on): so they
# get this module's globals.
reduce_block = cuda.jit(device=True)(
    types.FunctionType(_k.reduce_block.py_func.__code__, globals(), "reduce_block"))
add_volumes = cuda.jit(device=True)(
    types.FunctionType(_k.add_volumes.py_func.__code__, globals(), "add_volumes"))
_fix_negative_lts = cuda.jit(device=True)(_rebind(
    _lts.fix_negative_lts, "fix_negative_lts_dev", max=_max, min=_min, _face_lf=_face_lf,
    _from_neighbours=_from_neighbours))  # fmt: skip


@cuda.jit
def tile_raw(h, z, grp, B, c, dt0, lm, floor, grow, tin, edge, inf_on, dry, tcap, bopen, tlev,
             tdry):  # fmt: skip
    """Each tile's level before smoothing into *tlev*, and whether it is dry into *tdry*.

    One thread per tile (x = tile column, y = tile row). The level is the
    largest L <= *lm* with ``dt0 2^L`` no longer than ``c / sqrt(h)`` (h the
    deepest water over the tile and ``2^lm`` cells around it, or the level
    boundary over the lowest edge bed where that window reaches such an edge
    (*edge*, m, -inf for none), plus *grow*, at least *floor*) nor, on a grid
    edge whose boundary is not closed (bits of *bopen*), than the tile's cap
    *tcap* (s); 0 for tiles with inflow cells (*tin*). As the CPU's
    :func:`~emtwin.kernels._flood_lts.tile_levels` (maxima are exact in any order).
    """
    tj, ti = cuda.grid(2)
    ntr, ntc = tlev.shape
    if ti >= ntr or tj >= ntc:
        return
    nr, nc = h.shape
    halo = 1 << lm
    r0 = ti * B
    r1 = _min(r0 + B, nr)
    c0 = tj * B
    c1 = _min(c0 + B, nc)
    tm = 0.0
    for r in range(r0, r1):
        for j in range(c0, c1):
            tm = _max(tm, float(h[r, j]))
    tdry[ti, tj] = _tile_dry(tm, tin[ti, tj] != 0, edge, r0, r1, c0, c1, z, grp, dry, inf_on)
    w0 = _max(r0 - halo, 0)
    w1 = _min(r0 + B + halo, nr)
    v0 = _max(c0 - halo, 0)
    v1 = _min(c0 + B + halo, nc)
    hm = 0.0
    for r in range(w0, w1):
        for j in range(v0, v1):
            hm = _max(hm, float(h[r, j]))
    cap = tcap[ti, tj] if _capped(bopen, r0, r1, c0, c1, nr, nc) else math.inf
    lev = _tile_level(hm, edge, w0, w1, v0, v1, z, grp, grow, floor, c, cap, dt0, lm)
    tlev[ti, tj] = 0 if tin[ti, tj] != 0 else lev


@cuda.jit(device=True)
def _begins(k, lv):
    """Whether a step at level *lv* begins at sub-step k (never for SKIP)."""
    return lv != SKIP and (k & ((1 << lv) - 1)) == 0


@cuda.jit(device=True)
def _x_levels(tlev, B, i, j, nc):
    """(level of x-face j of row i, level of the other tile, column of the tile that owns
    it: the finer, the east one on a tie); a grid-edge face has its tile's level and
    SKIP across."""
    ti = i // B
    if j == 0:
        return tlev[ti, 0], SKIP, 0
    if j == nc:
        return tlev[ti, (nc - 1) // B], SKIP, (nc - 1) // B
    lw = tlev[ti, (j - 1) // B]
    le = tlev[ti, j // B]
    return _min(lw, le), _max(lw, le), (j - 1) // B if lw < le else j // B


@cuda.jit(device=True)
def _y_levels(tlev, B, i, j, nr):
    """As :func:`_x_levels` for y-face row i at column j (the owner's tile row; the south
    one on a tie)."""
    tj = j // B
    if i == 0:
        return tlev[0, tj], SKIP, 0
    if i == nr:
        return tlev[(nr - 1) // B, tj], SKIP, (nr - 1) // B
    ln = tlev[(i - 1) // B, tj]
    ls = tlev[i // B, tj]
    return _min(ln, ls), _max(ln, ls), (i - 1) // B if ln < ls else i // B


@cuda.jit
def faces_lts(k, h, z, grp, nman, nsc, qx, qy, qxn, qyn, vx, vy, pd, gdtl, dt0, bct, bv0, bv1,
              bv2, bv3, dx, dry, tlev, B, tcap, acc):  # fmt: skip
    """Sub-step k, first half: the new discharge of every face whose step begins at k.

    Launch on at least (nc + 1) x (nr + 1) threads, as the global
    :func:`~emtwin.kernels._flood_cuda.faces`. ``gdtl[L]`` = g dt0 2^L in
    the state dtype; ``dt0`` (s), ``dx`` (m), ``dry`` (m) in float64. A face
    takes the friction implicitly where its owner tile's step exceeds the
    tile's slope cap *tcap* (:func:`~emtwin.kernels._flood_lts.implicit`).
    """
    j, i = cuda.grid(2)
    nr, nc = h.shape
    vin = 0.0
    vout = 0.0
    if i < nr and j <= nc:
        lf, lo, tj = _x_levels(tlev, B, i, j, nc)
        if _begins(k, lf):
            dt = dt0 * (1 << lf)
            q, a, b = x_face(i, j, h, z, grp, nman, nsc, qx, qy, pd, gdtl[lf], bct, bv2, bv3,
                             dt, dx, dry, _implicit(lf, tcap[i // B, tj], dt0))  # fmt: skip
            _store(qxn, vx, i, j, q, lf, lo, j == 0 or j == nc, dt, pd[C_ZERO])
            vin += a
            vout += b
    if j < nc and i <= nr:
        lf, lo, ti = _y_levels(tlev, B, i, j, nr)
        if _begins(k, lf):
            dt = dt0 * (1 << lf)
            q, a, b = y_face(i, j, h, z, grp, nman, nsc, qx, qy, pd, gdtl[lf], bct, bv0, bv1,
                             dt, dx, dry, _implicit(lf, tcap[ti, j // B], dt0))  # fmt: skip
            _store(qyn, vy, i, j, q, lf, lo, i == 0 or i == nr, dt, pd[C_ZERO])
            vin += a
            vout += b
    add_volumes(acc, vin, vout)


@cuda.jit(device=True)
def _store(qn, v, i, j, q, lf, lo, edge, dt, zero):
    """Store face (i, j)'s new discharge *q* (level *lf*; *lo* the level across): nothing
    flows to a skipped tile (but a grid edge's face is its own); ``q dt`` goes into the
    face accumulator *v* where the tile across is coarser."""
    if lo == SKIP and not edge:
        qn[i, j] = zero
    else:
        qn[i, j] = q
        if lo != lf and lo != SKIP:
            v[i, j] += float(qn[i, j]) * dt


@cuda.jit(device=True)
def _side_q(q, v, vc, a, b, finer, dt):
    """The discharge a cell reads on a face (m2/s, float64): the face's own at the cell's
    level, else the finer side's volume ``v[a, b]`` over the step (moved to ``vc``)."""
    if finer:
        w = v[a, b]
        vc[a, b] = w
        v[a, b] = 0.0
        return w / dt
    return float(q[a, b])


@cuda.jit
def cells_lts(k, last, h, grp, rmult, rsc, qx, qy, qxn, qyn, vx, vy, vcx, vcy, maxd, maxs,
              maxhr, maxa, arr, pd, rain, inf, dt0, dx, t_end, arr_depth, tlev, B, head, tacc,
              acc, lbuf):  # fmt: skip
    """Sub-step k, second half: copy the faces that began their step at k; continuity and
    records of the cells whose step ends at k (see the module docstring).

    *rain* and *inf* are rates (m/s); *t_end* the time the sub-step ends (s);
    *last* whether it is the macro step's last (then h_max goes into
    ``lbuf``). *head* maps a tile to the first tile of its run (the row of
    *tacc* that counts its negative depths). Launch on at least nc x nr
    threads with blocks of a power-of-two size.
    """
    j, i = cuda.grid(2)
    nr, nc = h.shape
    s_inf = cuda.shared.array(MAX_THREADS, float64)
    s_max = cuda.shared.array(MAX_THREADS, float64)
    loss = 0.0
    hm = 0.0
    if i < nr and j < nc:
        # the copies: the west and north faces of every cell, the east and south grid edges
        if _begins(k, _x_levels(tlev, B, i, j, nc)[0]):
            qx[i, j] = qxn[i, j]
        if j == nc - 1 and _begins(k, _x_levels(tlev, B, i, nc, nc)[0]):
            qx[i, nc] = qxn[i, nc]
        if _begins(k, _y_levels(tlev, B, i, j, nr)[0]):
            qy[i, j] = qyn[i, j]
        if i == nr - 1 and _begins(k, _y_levels(tlev, B, nr, j, nr)[0]):
            qy[nr, j] = qyn[nr, j]
        ti = i // B
        tj = j // B
        L = tlev[ti, tj]
        if L != SKIP and ((k + 1) & ((1 << L) - 1)) == 0:
            dt = dt0 * (1 << L)
            if grp[i, j] != 0:
                qw = _side_q(qxn, vx, vcx, i, j, _lev(tlev, ti, (j - 1) // B) < L if j > 0
                             else False, dt)  # fmt: skip
                qe = _side_q(qxn, vx, vcx, i, j + 1, _lev(tlev, ti, (j + 1) // B) < L, dt)
                qn = _side_q(qyn, vy, vcy, i, j, _lev(tlev, (i - 1) // B, tj) < L if i > 0
                             else False, dt)  # fmt: skip
                qs = _side_q(qyn, vy, vcy, i + 1, j, _lev(tlev, (i + 1) // B, tj) < L, dt)
                r = rain * dt if rsc else rain * dt * float(rmult[i, j])
                avail = float(h[i, j]) + r
                loss = _min(inf * dt, avail)
                h[i, j] = (avail - loss) + (dt / dx) * ((qw - qe) + (qn - qs))
            d = h[i, j]
            # NaN: inf at once; the max depth of the macro step at its last sub-step
            hm = (_max(float(d), 0.0) if last else 0.0) if d == d else math.inf
            if d < pd[C_ZERO]:
                cuda.atomic.add(tacc, (head[ti, tj], A_NNEG), 1.0)
                cuda.atomic.add(lbuf, L_NNEG, 1.0)
            records(i, j, d, qxn, qyn, maxd, maxs, maxhr, maxa, arr, pd, t_end, arr_depth)
    reduce_block(s_inf, s_max, loss, hm, acc, A_INF, dx * dx, lbuf, L_HMAX)


@cuda.jit
def repair_lts(k, h, qx, qy, qxn, qyn, vx, vy, vcx, vcy, tlev, B, dt0, dx, rt, rn, nrun, lc,
               tacc, stack, instack, acc, lbuf):  # fmt: skip
    """Sub-step k, after :func:`cells_lts`: the negative-depth repair on one thread.

    Launch as ``[1, 1]`` after every sub-step: it returns at once when no
    depth went negative. *rt*, *rn*: the first tile and length of each of the
    *nrun* runs of tiles (:func:`~emtwin.kernels._flood_lts.runs`); *lc*
    work space for the runs that ended at k. The boundary outflow taken back
    is subtracted from ``acc[A_OUT]``, any unplaced volume (m3) added to
    ``acc[A_LOST]``.
    """
    if cuda.grid(1) != 0 or lbuf[L_NNEG] == 0.0:
        return
    ntc = tlev.shape[1]
    nlc = 0
    for i in range(nrun):
        t = rt[i]
        if ((k + 1) & ((1 << tlev[t // ntc, t % ntc]) - 1)) == 0:
            lc[nlc] = i
            nlc += 1
    a = cuda.local.array(4, float64)
    lf = cuda.local.array(4, int64)
    bcorr, lost = _fix_negative_lts(k, h, qx, qy, qxn, qyn, vx, vy, vcx, vcy, tlev, B, dt0, dx,
                                    rt, rn, lc, nlc, tacc, stack, instack, a, lf)  # fmt: skip
    acc[A_OUT] -= bcorr
    acc[A_LOST] += lost
    for i in range(nlc):
        tacc[rt[lc[i]], A_NNEG] = 0.0
    lbuf[L_NNEG] = 0.0
    lbuf[L_REPAIRS] += 1.0


#: :func:`faces_lts` as a real GPU runs it, by state dtype name (the power through
#: libdevice's cube root, as ``_flood_cuda.FACES``); the simulator runs :func:`faces_lts`.
FACES_LTS = {"float32": face_kernel(faces_lts, _m73_f32, "f32"),
             "float64": face_kernel(faces_lts, _m73_f64, "f64")}
