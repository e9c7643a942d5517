"""Numba cores of the local inertial flood kernel (private; see :mod:`emtwin.kernels.flood`).

Scheme: Bates, Horritt & Fewtrell (2010, J. Hydrol. 387:33-45) with the
q-centred momentum of de Almeida, Bates, Freer & Souvignet (2012, WRR 48,
W05528); references.md section 1. Staggered raster:

- ``h``, ``z``: cell centres, shape (nrows, ncols); row 0 is the northern edge.
- ``qx``: unit discharge on x-faces, shape (nrows, ncols + 1), m2/s, positive
  toward increasing column (east). Face ``j`` lies west of cell ``j``.
- ``qy``: unit discharge on y-faces, shape (nrows + 1, ncols), m2/s, positive
  toward increasing row (south). Face row ``i`` lies north of cell row ``i``;
  face row 0 is the northern boundary.
- ``grp``: uint8 per cell; 0 outside the domain, 1 ordinary cell, >= 2 a
  reservoir held behind closed faces. A face is open only between two cells
  with the same non-zero code.

One step is one fused pass over rows: y-face momentum, x-face momentum and
continuity (with rain, infiltration and the running records) for each row.
Rows are cut into contiguous chunks (whole rows; or windows of rows and
columns that leave out dry blocks, :mod:`emtwin.kernels._flood_dry`); within a
chunk rows go in order, so every face sees the old depths and old discharges
of the step. What a chunk needs from its neighbours (the row above it and two
face rows below it) is copied before the parallel loop, and the face row on a
chunk boundary is computed by both chunks (same inputs, same result) but
stored by its owner only. The parallel loop runs over groups of chunks of
about equal work, one per thread. Nothing is allocated per step.

All functions are positional: Numba does not honour keyword-only arguments
reliably (numba issues #5655, #2994).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

#: Gravity, m/s2.
G = 9.81

# Boundary kinds (per side, in the order north, south, west, east).
BC_CLOSED = 0
BC_OPEN = 1
BC_LEVEL = 2

# Indices into the float64 parameter vector ``p`` of :func:`step`.
P_DT, P_TNEW, P_DX, P_THETA, P_DRY, P_ARRIVAL, P_DEBRIS, P_RAIN, P_INF = range(9)
N_PARAMS = 9
# Indices into the state-dtype vector ``pd`` of :func:`step`: the face momentum
# runs in the state precision (float32 loads then need no conversion), so its
# constants come typed. Set by :func:`face_params`.
D_THETA, D_C1, D_GDT, D_INVDX, D_DRY, D_N2, D_ZERO, D_ONE, D_HALF, D_QUARTER = range(10)
# ... and of the records: the FD2320 debris factor and the AIDR 7-3 limits, and
# FROUDE_MAX^2 g of the speed limit
D_DEBRIS, D_03, D_06, D_12, D_2, D_4, D_FR2G = range(10, 17)
N_DPARAMS = 17
#: The largest Froude number a reported speed takes: cell speeds (records, coupling
#: reads) are at most ``FROUDE_MAX sqrt(g h)``. The local inertial scheme is for
#: gradually varied subcritical flow; beyond this a speed is an artefact of a face
#: discharge over a cell just wetted or just drained (hundreds of m/s over a film of a
#: millimetre, which made the AIDR class of such a cell H6). The dynamics do not use it.
FROUDE_MAX = 3.0
#: FROUDE_MAX^2 g, m s^-2: a reported speed is at most sqrt(FR2G h).
FR2G = FROUDE_MAX * FROUDE_MAX * G


def face_params(pd, theta, dt, dx, dry_tol, n_scalar, debris):
    """Fill the state-dtype constants of the face momentum and records (plain Python)."""
    pd[:] = (theta, 0.5 * (1.0 - theta), G * dt, 1.0 / dx, dry_tol, n_scalar * n_scalar,
             0.0, 1.0, 0.5, 0.25, debris, 0.3, 0.6, 1.2, 2.0, 4.0, FR2G)  # fmt: skip


@intrinsic
def _f2i(typingctx, x):
    """Reinterpret the bits of a float64 as an int64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _i2f(typingctx, i):
    """Reinterpret the bits of an int64 as a float64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _f2u32(typingctx, x):
    """Reinterpret the bits of a float32 as a uint32."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def _u2f32(typingctx, i):
    """Reinterpret the bits of a uint32 as a float32."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@njit(cache=True, error_model="numpy")
def pow_m73_f32(x):
    """``x ** (-7/3)`` for float32 x > 0, in float32 (as :func:`pow_m73`).

    Estimate from the float32 bits (error < 3.5 %), three Newton steps
    (relative error below float32 round-off), then ``y^7``; 8 lanes per AVX2
    vector instead of 4.
    """
    y = _u2f32(np.uint32(0x54A23300) - _f2u32(x) // np.uint32(3))
    four = np.float32(4.0)
    third = np.float32(1.0 / 3.0)
    y = y * (four - x * y * y * y) * third
    y = y * (four - x * y * y * y) * third
    y = y * (four - x * y * y * y) * third
    y2 = y * y
    return y2 * y2 * y2 * y


@njit(cache=True, error_model="numpy")
def pow_m73(x):
    """``x ** (-7/3)`` for x > 0 (float64), without a libm call.

    The friction term needs h_flow^(7/3) on every wet face each step; libm's
    cbrt/pow cost 25-45 ns each here and do not vectorise. This takes the
    inverse cube root from an estimate made on the high 32 bits of the float
    (exponent / 3; error < 3.5 %) and four Newton steps
    ``y <- y (4 - x y^3) / 3`` (no division; relative error < 1e-14), then
    returns ``y^7``. Branch-free, so LLVM vectorises loops over it.
    """
    x = float(x)
    hi = np.uint32(_f2i(x) >> 32)
    y = _i2f(np.int64(np.uint32(0x553EF0FF) - hi // np.uint32(3)) << 32)
    y = y * (4.0 - x * y * y * y) * (1.0 / 3.0)
    y = y * (4.0 - x * y * y * y) * (1.0 / 3.0)
    y = y * (4.0 - x * y * y * y) * (1.0 / 3.0)
    y = y * (4.0 - x * y * y * y) * (1.0 / 3.0)
    y2 = y * y
    return y2 * y2 * y2 * y


# ------------------------------------------------------------------ row loops
# Each loop below reads a few rows and writes one, with no branch that depends
# on the data (selects instead), so that LLVM vectorises it (AVX2: 4 float64 or
# 8 float32 lanes). Face loops run in the state dtype; y-face rows cover columns
# 0..nc-1, x-face rows the interior faces 1..nc-1.


@njit(cache=True, error_model="numpy")
def _y_hf(zN, hN, zS, hS, gN, gS, neg, hfb):
    """Flow depth max(eta) - max(z) of a y-face row; ``neg`` where the face is closed."""
    for j in range(zN.shape[0]):
        z0 = zN[j]
        z1 = zS[j]
        hf = max(z0 + hN[j], z1 + hS[j]) - max(z0, z1)
        g0 = gN[j]
        hfb[j] = hf if (g0 != 0) & (g0 == gS[j]) else neg


@njit(cache=True, error_model="numpy")
def _x_hf(zr, hr, gr, neg, hfb):
    """Flow depth of the interior x-faces of a row; ``neg`` where the face is closed."""
    for j in range(1, zr.shape[0]):
        z0 = zr[j - 1]
        z1 = zr[j]
        hf = max(z0 + hr[j - 1], z1 + hr[j]) - max(z0, z1)
        g0 = gr[j - 1]
        hfb[j] = hf if (g0 != 0) & (g0 == gr[j]) else neg


def _pw(hfb, dry, n2, first, n, pw):
    """n^2 h_flow^(-7/3) (h_flow floored at dry) on faces first..n-1, first 0 or 1."""


@overload(_pw, jit_options={"error_model": "numpy"})
def _pw_impl(hfb, dry, n2, first, n, pw):
    # Each loop starts at a constant: with a start known only at run time the
    # index may be negative as far as LLVM can tell, Numba's wraparound select
    # stays in the address, and the loop vectorises as gather/scatter, which
    # made the whole step 2.2 times slower (benchmarks/flood_kernel.py).
    pow_ = pow_m73_f32 if hfb.dtype == types.float32 else pow_m73

    def impl(hfb, dry, n2, first, n, pw):
        if first == 0:
            for j in range(n):
                pw[j] = n2 * pow_(max(hfb[j], dry))
        else:
            for j in range(1, n):
                pw[j] = n2 * pow_(max(hfb[j], dry))

    return impl


@njit(cache=True, error_model="numpy")
def _n2_y(nN, nS, half, pw):
    """Multiply by n^2 of the face, n the mean of the two cells (per-cell Manning)."""
    for j in range(nN.shape[0]):
        nf = half * (nN[j] + nS[j])
        pw[j] = pw[j] * (nf * nf)


@njit(cache=True, error_model="numpy")
def _n2_x(nr, half, pw):
    """As :func:`_n2_y` for the interior x-faces of a row."""
    for j in range(1, nr.shape[0]):
        nf = half * (nr[j - 1] + nr[j])
        pw[j] = pw[j] * (nf * nf)


@njit(cache=True, error_model="numpy")
def _y_ds(zN, hN, zS, hS, ds):
    """Water-level difference across a y-face row (south minus north), m."""
    for j in range(zN.shape[0]):
        ds[j] = (zS[j] + hS[j]) - (zN[j] + hN[j])


@njit(cache=True, error_model="numpy")
def _x_ds(zr, hr, ds):
    """Water-level difference across the interior x-faces (east minus west), m."""
    for j in range(1, zr.shape[0]):
        ds[j] = (zr[j] + hr[j]) - (zr[j - 1] + hr[j - 1])


@njit(cache=True, error_model="numpy")
def _y_qt(qxN, qxS, quarter, n, qt):
    """Old cross-flow at each y-face: mean of the four x-faces around it."""
    for j in range(n):
        qt[j] = quarter * ((qxN[j] + qxN[j + 1]) + (qxS[j] + qxS[j + 1]))


@njit(cache=True, error_model="numpy")
def _x_qt(qyN, qyS, quarter, qt):
    """Old cross-flow at each interior x-face: mean of the four y-faces around it."""
    for j in range(1, qyN.shape[0]):
        qt[j] = quarter * ((qyN[j - 1] + qyN[j]) + (qyS[j - 1] + qyS[j]))


@njit(cache=True, error_model="numpy")
def _y_q(hfb, pw, ds, qt, qo, ql, qr, pd, qn):
    """New discharge on a y-face row (de Almeida et al. 2012, q-centred, theta).

    ``q+ = (theta q + (1-theta)/2 (q_l + q_r) - g h_f dt S) / (1 + g dt n^2 |q| / h_f^(7/3))``
    with |q| the magnitude of the old discharge vector sqrt(q^2 + q_t^2): with
    |q| alone (the 1-D friction of Bates et al. 2010 applied per axis) oblique
    flow feels too little friction and fronts run about 2^(1/4) = 1.19 times
    too fast along the grid diagonals. 0 where h_f <= dry_tol or closed.
    """
    theta, c1, gdt, inv_dx = pd[D_THETA], pd[D_C1], pd[D_GDT], pd[D_INVDX]
    dry, zero, one = pd[D_DRY], pd[D_ZERO], pd[D_ONE]
    for j in range(qo.shape[0]):
        hf = hfb[j]
        q = qo[j]
        num = theta * q + c1 * (ql[j] + qr[j]) - gdt * hf * ds[j] * inv_dx
        den = one + gdt * np.sqrt(q * q + qt[j] * qt[j]) * pw[j]
        qn[j] = num / den if hf > dry else zero


@njit(cache=True, error_model="numpy")
def _x_q(hfb, pw, ds, qt, qo, pd, qn):
    """As :func:`_y_q` for the interior x-faces of a row; ``qo`` holds the old row."""
    theta, c1, gdt, inv_dx = pd[D_THETA], pd[D_C1], pd[D_GDT], pd[D_INVDX]
    dry, zero, one = pd[D_DRY], pd[D_ZERO], pd[D_ONE]
    for j in range(1, qo.shape[0] - 1):
        hf = hfb[j]
        q = qo[j]
        num = theta * q + c1 * (qo[j - 1] + qo[j + 1]) - gdt * hf * ds[j] * inv_dx
        den = one + gdt * np.sqrt(q * q + qt[j] * qt[j]) * pw[j]
        qn[j] = num / den if hf > dry else zero


@njit(cache=True, error_model="numpy")
def _copy(src, n, dst):
    for j in range(n):
        dst[j] = src[j]


@njit(cache=True, error_model="numpy")
def _infil(hr, gr, rain_dt, rrow, rsc, inf_dt):
    """Infiltration this step over a row, m (depth summed over cells)."""
    s = 0.0
    for j in range(hr.shape[0]):
        rain = rain_dt if rsc else rain_dt * rrow[j]
        s += min(inf_dt, hr[j] + rain) if gr[j] != 0 else 0.0
    return s


@njit(cache=True, error_model="numpy")
def _cont(hr, gr, qxr, qyN, qyS, rain_dt, rrow, rsc, inf_dt, dtdx):
    """Continuity on a row: h + rain - loss + dt/dx (q_in - q_out), in float64.

    The loss (infiltration) is min(rate dt, h + rain): never more than is there.
    """
    for j in range(hr.shape[0]):
        rain = rain_dt if rsc else rain_dt * rrow[j]
        avail = hr[j] + rain
        hn = (avail - min(inf_dt, avail)) + dtdx * (
            (float(qxr[j]) - qxr[j + 1]) + (float(qyN[j]) - qyS[j]))
        hr[j] = hn if gr[j] != 0 else hr[j]


@njit(cache=True, error_model="numpy")
def _stats(hr):
    """(max depth, number of negative depths) of a row; four chains for speed.

    The max is NaN when any depth is NaN or infinite (``x - x`` is 0 for a
    finite x and NaN otherwise, and is summed alongside), so that a blow-up
    is caught at the step it happens.
    """
    n = hr.shape[0]
    m0 = m1 = m2 = m3 = 0.0
    bad = 0.0
    neg = 0
    j = 0
    while j + 4 <= n:
        a, b, c, d = hr[j], hr[j + 1], hr[j + 2], hr[j + 3]
        m0, m1, m2, m3 = max(m0, a), max(m1, b), max(m2, c), max(m3, d)
        bad += ((a - a) + (b - b)) + ((c - c) + (d - d))
        neg += (a < 0) + (b < 0) + (c < 0) + (d < 0)
        j += 4
    while j < n:
        m0 = max(m0, hr[j])
        bad += hr[j] - hr[j]
        neg += hr[j] < 0
        j += 1
    return max(max(m0, m1), max(m2, m3)) + bad, neg


@njit(cache=True, error_model="numpy")
def _rec_depth(hr, maxd):
    for j in range(hr.shape[0]):
        h = hr[j]
        m = maxd[j]
        maxd[j] = h if h > m else m


@njit(cache=True, error_model="numpy")
def _rec_speed(hr, qxr, qyN, qyS, pd, sp, maxs):
    """Cell speed |mean face q| / h, at most FROUDE_MAX sqrt(g h) (0 where h < dry), into
    sp; running max into maxs. (The limit is taken on |q|^2 <= FROUDE_MAX^2 g h^3, so
    the loop keeps its one square root: ``sqrt(q^2 / 4)`` is ``sqrt(q^2) / 2`` bit for
    bit, and a second root per cell cost the step 10 %.)"""
    quarter, dry, zero, fr2g = pd[D_QUARTER], pd[D_DRY], pd[D_ZERO], pd[D_FR2G]
    for j in range(hr.shape[0]):
        h = hr[j]
        u2 = qxr[j] + qxr[j + 1]
        v2 = qyN[j] + qyS[j]
        w = quarter * (u2 * u2 + v2 * v2)
        lim = fr2g * h * h * h
        s = np.sqrt(w if w <= lim else lim) / h
        s = s if h >= dry else zero
        sp[j] = s
        m = maxs[j]
        maxs[j] = s if s > m else m


@njit(cache=True, error_model="numpy")
def _rec_hazard(hr, sp, pd, maxhr, maxa):
    """Running max of the FD2320 hazard rating and the AIDR class (as hazard_rating.py).

    HR = d (v + 0.5) + DF (DF where d >= 0.25 m); AIDR class = 1 + the number
    of the nested classes H1..H5 whose limits fail. 0 where d < dry.
    """
    dry, zero, half, quarter = pd[D_DRY], pd[D_ZERO], pd[D_HALF], pd[D_QUARTER]
    debris = pd[D_DEBRIS]
    c03, c06, c12, one, c2, c4 = pd[D_03], pd[D_06], pd[D_12], pd[D_ONE], pd[D_2], pd[D_4]
    for j in range(hr.shape[0]):
        d = hr[j]
        v = sp[j]
        wet = d >= dry
        hz = d * (v + half) + (debris if d >= quarter else zero)
        hz = hz if wet else zero
        m = maxhr[j]
        maxhr[j] = hz if hz > m else m
        dv = d * v
        c = (1 + (not ((dv <= c03) & (d <= c03) & (v <= c2)))
             + (not ((dv <= c06) & (d <= half) & (v <= c2)))
             + (not ((dv <= c06) & (d <= c12) & (v <= c2)))
             + (not ((dv <= one) & (d <= c2) & (v <= c2)))
             + (not ((dv <= c4) & (d <= c4) & (v <= c4))))  # fmt: skip
        c = c if wet else 0
        ma = maxa[j]
        maxa[j] = c if c > ma else ma


@njit(cache=True, error_model="numpy")
def _rec_arrival(hr, arr, arr_depth, t_new):
    for j in range(hr.shape[0]):
        if np.isnan(arr[j]) and hr[j] >= arr_depth:
            arr[j] = t_new


@njit(cache=True, error_model="numpy")
def _bnd_q(q_out, q_in, kind, val, h_c, z_c, eta_in, has_in, n2, gdt, dry_tol, inv_dx, theta):
    """New outward unit discharge on a domain-edge face (positive = leaving).

    ``kind`` BC_LEVEL: ghost cell one dx outside with water level ``val`` (m)
    and the bed of the edge cell; same momentum equation, flow either way, with
    the theta weighting of the interior faces extended to the edge: the face
    beyond the ghost cell is taken to carry the edge face's own discharge, so
    ``q_out`` is weighted ``(1 + theta) / 2`` and the old outward discharge on
    the edge cell's inner face, ``q_in``, ``(1 - theta) / 2``. (Without it, a
    strip one cell wide along a level edge, walled on its inner side, rings
    undamped at the grid scale and, with the step set by its own depth, grows:
    docs/flood.md, *Forcing and boundaries*.)
    ``kind`` BC_OPEN: free outflow; ghost water level lower by ``s * dx``
    with ``s = val`` when ``val > 0`` (a friction slope), else the water-surface
    slope from the inward neighbour to the edge cell, extrapolated (zero
    gradient of the slope), floored at 0. At steady state this is Manning
    normal-depth outflow ``q = h^(5/3) s^(1/2) / n``. Never inflow.
    """
    if kind == BC_CLOSED:
        return 0.0
    eta_c = z_c + h_c
    if kind == BC_LEVEL:
        hf = max(val, eta_c) - z_c
        if hf <= dry_tol:
            return 0.0
        fr = gdt * n2 * abs(q_out) * pow_m73(hf)
        qw = 0.5 * (1.0 + theta) * q_out + 0.5 * (1.0 - theta) * q_in
        return (qw - gdt * hf * (val - eta_c) * inv_dx) / (1.0 + fr)
    hf = h_c
    if hf <= dry_tol:
        return 0.0
    if val > 0.0:
        s = val
    elif has_in:
        s = max(eta_in - eta_c, 0.0) * inv_dx
    else:
        s = 0.0
    q0 = max(q_out, 0.0)
    fr = gdt * n2 * q0 * pow_m73(hf)
    return (q0 + gdt * hf * s) / (1.0 + fr)


@njit(cache=True, error_model="numpy")
def _ybound(h, z, grp, nman, nsc, qy, bct, bcv, qyb, p, pd):
    """New discharge on the northern and southern boundary face rows into ``qyb``.

    Returns (inflow, outflow) volumes over the step, m3.
    """
    nr, nc = h.shape
    dt = p[P_DT]
    dx = p[P_DX]
    gdt = G * dt
    inv_dx = 1.0 / dx
    dry = p[P_DRY]
    theta = float(pd[D_THETA])
    vin = 0.0
    vout = 0.0
    for side in range(2):
        kind = bct[side]
        f = 0 if side == 0 else nr
        r = 0 if side == 0 else nr - 1
        ri = 1 if side == 0 else nr - 2
        sgn = -1.0 if side == 0 else 1.0
        for j in range(nc):
            qn = 0.0
            if kind != BC_CLOSED and grp[r, j] == 1:
                has_in = ri >= 0 and ri < nr and grp[ri, j] != 0
                eta_in = float(z[ri, j]) + h[ri, j] if has_in else 0.0
                nc_ = nman[0, 0] if nsc else nman[r, j]
                qout = _bnd_q(
                    sgn * qy[f, j], sgn * qy[ri if side == 0 else r, j], kind, bcv[side],
                    float(h[r, j]), float(z[r, j]), eta_in, has_in, nc_ * nc_, gdt, dry,
                    inv_dx, theta,
                )  # fmt: skip
                if qout > 0.0:
                    vout += qout * dx * dt
                else:
                    vin -= qout * dx * dt
                qn = sgn * qout
            qyb[side, j] = qn
    return vin, vout


@njit(cache=True, error_model="numpy")
def _xbound(r, side, hr_, zr, gr, nman, nsc, qxr, bct, bcv, gdt, dry, inv_dx, c0, theta):
    """New outward discharge on the west (side 2) or east (side 3) face of row r.

    ``hr_``, ``zr``, ``gr`` and ``qxr`` (old discharges) hold the row from column
    *c0* on (to the grid's east edge for side 3); *theta* as :func:`_bnd_q`.
    """
    nc = hr_.shape[0]
    kind = bct[side]
    c = 0 if side == 2 else nc - 1
    if kind == BC_CLOSED or gr[c] != 1:
        return 0.0
    ci = 1 if side == 2 else nc - 2
    has_in = ci >= 0 and ci < nc and gr[ci] != 0
    eta_in = float(zr[ci]) + hr_[ci] if has_in else 0.0
    sgn = -1.0 if side == 2 else 1.0
    f = 0 if side == 2 else nc
    n_ = nman[0, 0] if nsc else nman[r, c0 + c]
    return _bnd_q(
        sgn * qxr[f], sgn * qxr[1 if side == 2 else nc - 1], kind, bcv[side], float(hr_[c]),
        float(zr[c]), eta_in, has_in, n_ * n_, gdt, dry, inv_dx, theta,
    )  # fmt: skip


@njit(cache=True, error_model="numpy")
def _chunk(k, win, h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa,
           arr, bct, bcv, sq, sh, sqx, qbot, qyb, wk, chacc, rowneg, p, pd):  # fmt: skip
    """Momentum and continuity for one chunk, in row order: the cells of rows a..b-1 and
    columns c0..c1-1, ``(a, b, c0, c1, o) = win[k]``; the number of negative depths of row
    r goes to ``rowneg[o + r - a]``.

    A chunk of the reference step spans the whole width. A narrower one (a window of
    :func:`emtwin.kernels._flood_dry.dry_windows`) leaves the x-faces on its west and
    east edges as they are, unless they are the grid's own: its maker guarantees that
    the cells on the far side stay below the dry depth, with every face around them 0.
    """
    nr = h.shape[0]
    a, b, c0, c1, o = win[k, 0], win[k, 1], win[k, 2], win[k, 3], win[k, 4]
    nc = c1 - c0
    edge_w = c0 == 0
    edge_e = c1 == h.shape[1]
    last = b == nr
    dt = p[P_DT]
    dx = p[P_DX]
    dry = p[P_DRY]
    rain_dt = p[P_RAIN]
    inf_dt = p[P_INF]
    gdt = G * dt
    inv_dx = 1.0 / dx
    dtdx = dt / dx
    theta = float(pd[D_THETA])
    n2 = pd[D_N2] if nsc else pd[D_ONE]
    half = pd[D_HALF]
    quarter = pd[D_QUARTER]
    neg = pd[D_ZERO] - pd[D_ONE]
    dry_d = pd[D_DRY]
    po = sq[k, 0, :nc]  # old qy of the face row before the current one
    qxo = sqx[k, 0, : nc + 1]  # old qx of the current (then the previous) cell row
    qb = qbot[k, :nc]  # new qy of the current face row (south face of the row behind)
    hfb, pw, ds = wk[k, 0, : nc + 1], wk[k, 1, : nc + 1], wk[k, 2, : nc + 1]
    qt, sp = wk[k, 3, : nc + 1], wk[k, 4, : nc + 1]
    vin = 0.0
    vout = 0.0
    infil = 0.0
    hmax = 0.0
    nonfinite = 0.0  # NaN once a row had a NaN or infinite depth (see _stats)
    for f in range(a, b + 1):
        own = f < b or last
        # old qy of face row f + 1 (the cross-flow of the x-faces of row f)
        if f + 1 < b or (last and f < nr):
            qf1 = qy[f + 1, c0:c1]
        elif f + 1 == b:
            qf1 = sq[k, 1, :nc]
        else:
            qf1 = sq[k, 2, :nc]
        # ---- y-faces of face row f (between cell rows f-1 and f)
        if f == 0 or f == nr:
            src = qyb[0, c0:c1] if f == 0 else qyb[1, c0:c1]
            qf = qy[f, c0:c1]
            _copy(qf, nc, po)
            _copy(src, nc, qb)
            _copy(src, nc, qf)
        else:
            hN = h[f - 1, c0:c1] if f - 1 >= a else sh[k, 0, :nc]
            hS = h[f, c0:c1] if own else sh[k, 1, :nc]
            qxS = qx[f, c0 : c1 + 1] if own else sqx[k, 1, : nc + 1]  # old qx of row f
            qf = qy[f, c0:c1] if own else sq[k, 1, :nc]
            zN, zS = z[f - 1, c0:c1], z[f, c0:c1]
            _y_hf(zN, hN, zS, hS, grp[f - 1, c0:c1], grp[f, c0:c1], neg, hfb)
            _pw(hfb, dry_d, n2, 0, nc, pw)
            if not nsc:
                _n2_y(nman[f - 1, c0:c1], nman[f, c0:c1], half, pw)
            _y_ds(zN, hN, zS, hS, ds)
            _y_qt(qxo, qxS, quarter, nc, qt)
            _y_q(hfb, pw, ds, qt, qf, po, qf1, pd, qb)
            _copy(qf, nc, po)  # po: old qy of face row f, for the x-faces and the next row
            if own:
                _copy(qb, nc, qf)
        # ---- x-faces of cell row f (po holds the old qy of face row f, qf1 of f + 1)
        if f < b:
            r = f
            hr_, zr, gr, qxr = h[r, c0:c1], z[r, c0:c1], grp[r, c0:c1], qx[r, c0 : c1 + 1]
            _copy(qxr, nc + 1, qxo)
            for side in (2, 3):
                if not (edge_w if side == 2 else edge_e):
                    continue
                qout = _xbound(r, side, hr_, zr, gr, nman, nsc, qxo, bct, bcv, gdt, dry, inv_dx,
                               c0, theta)  # fmt: skip
                if qout > 0.0:
                    vout += qout * dx * dt
                else:
                    vin -= qout * dx * dt
                if side == 2:
                    qxr[0] = -qout
                else:
                    qxr[nc] = qout
            if nc > 1:
                _x_hf(zr, hr_, gr, neg, hfb)
                _pw(hfb, dry_d, n2, 1, nc, pw)
                if not nsc:
                    _n2_x(nman[r, c0:c1], half, pw)
                _x_ds(zr, hr_, ds)
                _x_qt(po, qf1, quarter, qt)
                _x_q(hfb, pw, ds, qt, qxo, pd, qxr)
        # ---- continuity and records of cell row f-1
        if f - 1 >= a:
            r = f - 1
            hr_, gr, qxr, qyN = h[r, c0:c1], grp[r, c0:c1], qx[r, c0 : c1 + 1], qy[r, c0:c1]
            rrow = rmult[0] if rsc else rmult[r, c0:c1]
            if inf_dt > 0.0:
                infil += _infil(hr_, gr, rain_dt, rrow, rsc, inf_dt)
            _cont(hr_, gr, qxr, qyN, qb, rain_dt, rrow, rsc, inf_dt, dtdx)
            hm, nneg = _stats(hr_)
            hmax = max(hmax, hm)
            nonfinite += hm - hm
            rowneg[o + r - a] = nneg
            _rec_depth(hr_, maxd[r, c0:c1])
            _rec_speed(hr_, qxr, qyN, qb, pd, sp, maxs[r, c0:c1])
            _rec_hazard(hr_, sp, pd, maxhr[r, c0:c1], maxa[r, c0:c1])
            _rec_arrival(hr_, arr[r, c0:c1], p[P_ARRIVAL], p[P_TNEW])
    chacc[k, 0] = vin
    chacc[k, 1] = vout
    chacc[k, 2] = infil * dx * dx
    chacc[k, 3] = hmax + nonfinite


def scratch(nch: int, nc: int, dtype) -> tuple:
    """The scratch arrays of *nch* chunks of :func:`step` on a grid of *nc* columns:
    old qy (the row above, two rows below), old h (above, below), old qx (above, below),
    the new qy of the current face row, the row work (h_f, n^2 h_f^-7/3, dS, q_t, speed)
    and the per-chunk sums (in, out, infiltration, h_max)."""
    return (np.zeros((nch, 3, nc), dtype), np.zeros((nch, 2, nc), dtype),
            np.zeros((nch, 2, nc + 1), dtype), np.zeros((nch, nc), dtype),
            np.zeros((nch, 5, nc + 1), dtype), np.zeros((nch, 4)))  # fmt: skip


@njit(cache=True, error_model="numpy")
def _prepare(h, z, grp, nman, nsc, qx, qy, bct, bcv, win, sq, sh, sqx, qyb, p, pd):
    """Copy what each chunk needs from its neighbours; the N/S boundary faces.

    Returns the (inflow, outflow) through the northern and southern edges, m3.
    """
    nr = h.shape[0]
    for k in range(win.shape[0]):
        a, b, c0, c1 = win[k, 0], win[k, 1], win[k, 2], win[k, 3]
        n = c1 - c0
        if a > 0:  # explicit copies: slice assignment would allocate a temporary
            _copy(qy[a - 1, c0:c1], n, sq[k, 0])
            _copy(h[a - 1, c0:c1], n, sh[k, 0])
            _copy(qx[a - 1, c0 : c1 + 1], n + 1, sqx[k, 0])
        if b < nr:
            _copy(qy[b, c0:c1], n, sq[k, 1])
            _copy(h[b, c0:c1], n, sh[k, 1])
            _copy(qy[b + 1, c0:c1], n, sq[k, 2])
            _copy(qx[b, c0 : c1 + 1], n + 1, sqx[k, 1])
    return _ybound(h, z, grp, nman, nsc, qy, bct, bcv, qyb, p, pd)


@njit(cache=True, error_model="numpy")
def _finish(win, chacc, rowneg, vin, vout):
    hmax = 0.0
    nonfinite = 0.0
    infil = 0.0
    nneg = 0
    for k in range(win.shape[0]):
        vin += chacc[k, 0]
        vout += chacc[k, 1]
        infil += chacc[k, 2]
        hmax = max(hmax, chacc[k, 3])
        nonfinite += chacc[k, 3] - chacc[k, 3]
        for i in range(win[k, 4], win[k, 4] + win[k, 1] - win[k, 0]):
            nneg += rowneg[i]
    return hmax + nonfinite, vin, vout, infil, nneg


@njit(cache=True, error_model="numpy")
def step(h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa, arr,
         bct, bcv, win, sq, sh, sqx, qbot, qyb, wk, chacc, rowneg, p, pd, reverse):  # fmt: skip
    """Advance the state by one step of ``p[P_DT]`` seconds, in place, on one thread.

    *win* holds the chunks, one row ``(a, b, c0, c1, o)`` each (see :func:`_chunk`):
    together they cover the cells the step computes (all of them in the reference
    step). The chunks run one after another (last first when *reverse*; the
    results do not depend on the order, which the tests check). Returns (h_max
    m, boundary inflow m3, boundary outflow m3, infiltration m3, number of
    cells left with negative depth for :func:`fix_negative`).
    """
    vin, vout = _prepare(h, z, grp, nman, nsc, qx, qy, bct, bcv, win, sq, sh, sqx, qyb, p, pd)
    nch = win.shape[0]
    for i in range(nch):
        k = nch - 1 - i if reverse else i
        _chunk(k, win, h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa, arr,
               bct, bcv, sq, sh, sqx, qbot, qyb, wk, chacc, rowneg, p, pd)  # fmt: skip
    return _finish(win, chacc, rowneg, vin, vout)


@njit(parallel=True, cache=True, error_model="numpy")
def step_parallel(h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa, arr,
                  bct, bcv, win, gs, sq, sh, sqx, qbot, qyb, wk, chacc, rowneg, p, pd):  # fmt: skip
    """As :func:`step`, groups of chunks spread over threads with ``prange``: group g,
    the chunks ``gs[g]..gs[g + 1] - 1``, is one task (Numba splits a parallel loop's
    iterations into equal contiguous shares, one per thread, so the groups should be
    of about equal work).
    """
    vin, vout = _prepare(h, z, grp, nman, nsc, qx, qy, bct, bcv, win, sq, sh, sqx, qyb, p, pd)
    for g in prange(gs.shape[0] - 1):
        for k in range(gs[g], gs[g + 1]):
            _chunk(k, win, h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa,
                   arr, bct, bcv, sq, sh, sqx, qbot, qyb, wk, chacc, rowneg, p, pd)  # fmt: skip
    return _finish(win, chacc, rowneg, vin, vout)


#: Cells around a cell the negative-depth repair may take a deficit from (:func:`fix_negative`,
#: :func:`emtwin.kernels._flood_lts.fix_negative_lts`).
REACH = 4
#: Times the repair scales one cell's outflow in one call before it takes from around it.
MAX_SCALINGS = 16
#: The global repair takes from around a cell past MAX_SCALINGS only while its deficit is
#: at most this share of its outflow (scaling alone would take 1 / BOUNCE rounds or more).
BOUNCE = 1e-3


@njit(cache=True, error_model="numpy", inline="always")
def _from_neighbours(h, r, j, d, reach):
    """Take depth *d* (m) from the cells within *reach* cells of cell (r, j) (the nearest
    square ring of them that holds it, or all of them) in proportion to their depths,
    none below 0; returns the depth that was not there (m)."""
    nr, nc = h.shape
    for rad in range(1, reach + 1):
        r0 = max(r - rad, 0)
        r1 = min(r + rad + 1, nr)
        c0 = max(j - rad, 0)
        c1 = min(j + rad + 1, nc)
        tot = 0.0
        for rr in range(r0, r1):
            for jj in range(c0, c1):
                tot += max(float(h[rr, jj]), 0.0)
        if tot >= d or rad == reach:
            take = min(d, tot)
            if take > 0.0:
                for rr in range(r0, r1):
                    for jj in range(c0, c1):
                        hv = float(h[rr, jj])
                        if hv > 0.0:
                            h[rr, jj] = hv - min(hv, take * (hv / tot))
            return d - take
    return d


@njit(cache=True, error_model="numpy")
def fix_negative(h, qx, qy, rowneg, stack, instack, dt, dx):
    """Remove negative depths by scaling down the outflows of the cells concerned.

    A cell left with depth -D < 0 after a step has outflow volume O >= D (its
    start depth, rain and inflow are never negative). Its outgoing face
    discharges are scaled by ``s = 1 - D/O``, which leaves it exactly empty;
    the water not sent is taken back from the receiving cells (which may then
    need the same treatment) or from the boundary outflow. Fluxes stay equal on
    both sides of every face, so mass is conserved exactly.

    Where the outflows form a loop (water turning round a few nearly empty
    cells), the deficit taken back goes round it, shrinking each face by D a
    round: O/D rounds, billions for a round-off deficit on a film of rain. So
    once a cell has been scaled :data:`MAX_SCALINGS` times in a call, a deficit
    of at most :data:`BOUNCE` of its outflow (one that would go round for
    1 / BOUNCE rounds or more) is taken from the water within :data:`REACH`
    cells of it in proportion to depth (:func:`_from_neighbours`), and only
    what is not there is scaled again; a larger one is scaled as before (it
    fades within 1 / BOUNCE rounds). A cell that water was taken from so may
    end deeper below zero than its whole outflow; the rest of its deficit is
    taken from around it too. *stack*
    holds 2 x cells (those to do from the front, those scaled from the back),
    *instack* per cell 1 (to do) + 2 x its scalings, all 0 again on return.

    Returns (boundary outflow removed m3, volume that could not be placed m3;
    the second is 0 unless something is badly wrong and shows in the ledger).
    """
    nr, nc = h.shape
    dtdx = dt / dx
    area = dx * dx
    top = 0
    for r in range(nr):
        if rowneg[r] == 0:
            continue
        for j in range(nc):
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
        qw = float(qx[r, j])
        qe = float(qx[r, j + 1])
        qn = float(qy[r, j])
        qs = float(qy[r + 1, j])
        out = (max(-qw, 0.0) + max(qe, 0.0) + max(-qn, 0.0) + max(qs, 0.0)) * dtdx
        h[r, j] = 0.0
        if instack[cell] < 2 * MAX_SCALINGS:
            if instack[cell] == 0:
                stack[ns - 1 - nv] = cell
                nv += 1
            instack[cell] += 2
        elif -hc <= BOUNCE * out:  # going round a loop: from the cells around it
            hc = -_from_neighbours(h, r, j, -hc, REACH)
            if hc >= 0.0:
                continue  # (what was not there is scaled as before)
        if out <= 0.0:  # (no outflow to scale: from the cells around it)
            lost += _from_neighbours(h, r, j, -hc, REACH) * area
            continue
        s = min(max(1.0 + hc / out, 0.0), 1.0)
        cut = 1.0 - s
        for side in range(4):
            if side == 0:
                q = -qw
            elif side == 1:
                q = qe
            elif side == 2:
                q = -qn
            else:
                q = qs
            if q <= 0.0:
                continue
            red = q * cut * dtdx  # depth not sent through this face
            if side == 0:
                qx[r, j] = qw * s
                rr, jj = r, j - 1
            elif side == 1:
                qx[r, j + 1] = qe * s
                rr, jj = r, j + 1
            elif side == 2:
                qy[r, j] = qn * s
                rr, jj = r - 1, j
            else:
                qy[r + 1, j] = qs * s
                rr, jj = r + 1, j
            if rr < 0 or rr >= nr or jj < 0 or jj >= nc:
                bcorr += red * area
                continue
            h[rr, jj] -= red
            nb = rr * nc + jj
            if h[rr, jj] < 0.0 and (instack[nb] & 1) == 0:
                stack[top] = nb
                instack[nb] |= 1
                top += 1
        if -hc > out:
            # deeper below zero than all its outflow: water taken from it by a neighbour's
            # repair above; the rest of the deficit is with the cells around it
            lost += _from_neighbours(h, r, j, -hc - out, REACH) * area
    for i in range(nv):
        instack[stack[ns - 1 - i]] = 0
    return bcorr, lost


@njit(cache=True, error_model="numpy")
def add_depth(h, rows, cols, dd):
    """Add depth ``dd[i]`` (m) to cell (rows[i], cols[i]); returns the max depth touched."""
    m = 0.0
    for i in range(rows.shape[0]):
        h[rows[i], cols[i]] += dd[i]
        m = max(m, float(h[rows[i], cols[i]]))
    return m
