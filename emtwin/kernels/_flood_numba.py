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
Rows are cut into contiguous chunks, one ``prange`` iteration each; within a
chunk rows go in order, so every face sees the old depths and old discharges
of the step. What a chunk needs from its neighbours (the row above it and two
face rows below it) is copied before the parallel loop, and the face row on a
chunk boundary is computed by both chunks (same inputs, same result) but
stored by its owner only. Nothing is allocated per step.

All functions are positional: Numba does not honour keyword-only arguments
reliably (numba issues #5655, #2994).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from emtwin.kernels.hazard_rating import aidr_class_nb, hazard_rating_nb

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
N_DPARAMS = 10


def face_params(pd, theta, dt, dx, dry_tol, n_scalar):
    """Fill the state-dtype constants of the face momentum (plain Python)."""
    pd[:] = (theta, 0.5 * (1.0 - theta), G * dt, 1.0 / dx, dry_tol, n_scalar * n_scalar,
             0.0, 1.0, 0.5, 0.25)  # fmt: skip


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


@njit(cache=True, error_model="numpy")
def _pow_row_y(zN, hN, zS, hS, dry, pw):
    """h_flow^(-7/3) on a y-face row (h_flow floored at dry) into pw; vectorised."""
    for j in range(zN.shape[0]):
        z0 = float(zN[j])
        z1 = float(zS[j])
        hf = max(z0 + hN[j], z1 + hS[j]) - max(z0, z1)
        pw[j] = pow_m73(max(hf, dry))


@njit(cache=True, error_model="numpy")
def _pow_row_x(zr, hr_, dry, pw):
    """h_flow^(-7/3) on the interior x-faces 1..ncols-1 of a row into pw; vectorised."""
    for j in range(1, zr.shape[0]):
        z0 = float(zr[j - 1])
        z1 = float(zr[j])
        hf = max(z0 + hr_[j - 1], z1 + hr_[j]) - max(z0, z1)
        pw[j] = pow_m73(max(hf, dry))


@njit(cache=True, error_model="numpy")
def _face_q(q, ql, qr, qt, eta0, eta1, zmax, pw, n2, pd):
    """New unit discharge on an interior face (de Almeida et al. 2012, eq. for q^{t+dt}).

    q: old value; ql, qr: old values on the two neighbouring faces along the
    flow direction; qt: old cross-flow discharge at the face (mean of the four
    faces around it); eta0/eta1: water levels on the negative/positive side of
    the face; zmax: higher bed of the two cells; pw: h_flow^(-7/3); pd: the
    constants (see D_*). Arithmetic in the dtype of the inputs.

    Friction uses the magnitude of the discharge vector, sqrt(q^2 + qt^2),
    not |q| alone: with |q| alone each component sees too little friction on
    oblique flow and fronts run about 2^(1/4) = 1.19 times too fast along the
    grid diagonals (the 1-D friction of Bates et al. 2010 applied per axis).
    """
    hf = max(eta0, eta1) - zmax
    if hf <= pd[D_DRY]:
        return pd[D_ZERO]
    qc = pd[D_THETA] * q + pd[D_C1] * (ql + qr)
    gdt = pd[D_GDT]
    # Semi-implicit Manning friction: 1 + g dt n^2 |q| / h_flow^(7/3).
    fr = gdt * n2 * np.sqrt(q * q + qt * qt) * pw
    return (qc - gdt * hf * (eta1 - eta0) * pd[D_INVDX]) / (pd[D_ONE] + fr)


@njit(cache=True, error_model="numpy")
def _bnd_q(q_out, kind, val, h_c, z_c, eta_in, has_in, n2, gdt, dry_tol, inv_dx):
    """New outward unit discharge on a domain-edge face (positive = leaving).

    ``kind`` BC_LEVEL: ghost cell one dx outside with water level ``val`` (m)
    and the bed of the edge cell; same momentum equation, flow either way.
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
        return (q_out - gdt * hf * (val - eta_c) * inv_dx) / (1.0 + fr)
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
def _ybound(h, z, grp, nman, nsc, qy, bct, bcv, qyb, p):
    """New discharge on the northern and southern boundary face rows into ``qyb``.

    Returns (inflow, outflow) volumes over the step, m3.
    """
    nr, nc = h.shape
    dt = p[P_DT]
    dx = p[P_DX]
    gdt = G * dt
    inv_dx = 1.0 / dx
    dry = p[P_DRY]
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
                    sgn * qy[f, j], kind, bcv[side], float(h[r, j]), float(z[r, j]),
                    eta_in, has_in, nc_ * nc_, gdt, dry, inv_dx,
                )  # fmt: skip
                if qout > 0.0:
                    vout += qout * dx * dt
                else:
                    vin -= qout * dx * dt
                qn = sgn * qout
            qyb[side, j] = qn
    return vin, vout


@njit(cache=True, error_model="numpy")
def _xbound(r, side, hr_, zr, gr, nman, nsc, qxr, bct, bcv, gdt, dry, inv_dx):
    """New outward discharge on the west (side 2) or east (side 3) face of row r."""
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
    n_ = nman[0, 0] if nsc else nman[r, c]
    return _bnd_q(
        sgn * qxr[f], kind, bcv[side], float(hr_[c]), float(zr[c]), eta_in, has_in,
        n_ * n_, gdt, dry, inv_dx,
    )  # fmt: skip


@njit(cache=True, error_model="numpy")
def _chunk(k, a, b, h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa,
           arr, bct, bcv, sq, sh, sqx, qbot, qyb, pwb, chacc, rowneg, p, pd):  # fmt: skip
    """Momentum and continuity for cell rows a..b-1 (one chunk), in row order."""
    nr, nc = h.shape
    last = b == nr
    dt = p[P_DT]
    t_new = p[P_TNEW]
    dx = p[P_DX]
    dry = p[P_DRY]
    arr_depth = p[P_ARRIVAL]
    debris = p[P_DEBRIS]
    rain_dt = p[P_RAIN]
    inf_dt = p[P_INF]
    gdt = G * dt
    inv_dx = 1.0 / dx
    dtdx = dt / dx
    n2s = pd[D_N2]
    zero = pd[D_ZERO]
    half = pd[D_HALF]
    quarter = pd[D_QUARTER]
    po = sq[k, 0]  # old qy of the face row before the current one
    qxo = sqx[k, 0]  # old qx of the cell row before the current one
    qb = qbot[k]  # new qy of the current face row (south face of the row behind)
    pw = pwb[k]  # h_flow^(-7/3) of the faces of the current row
    vin = 0.0
    vout = 0.0
    infil = 0.0
    hmax = 0.0
    for f in range(a, b + 1):
        own = f < b or last
        # old qy of face row f + 1 (the cross-flow of the x-faces of row f)
        if f + 1 < b or (last and f < nr):
            qf1 = qy[f + 1]
        elif f + 1 == b:
            qf1 = sq[k, 1]
        else:
            qf1 = sq[k, 2]
        # ---- y-faces of face row f (between cell rows f-1 and f)
        if f == 0 or f == nr:
            src = qyb[0] if f == 0 else qyb[1]
            qf = qy[f]
            for j in range(nc):
                po[j] = qf[j]
                qb[j] = src[j]
                qf[j] = src[j]
        else:
            hN = h[f - 1] if f - 1 >= a else sh[k, 0]
            hS = h[f] if own else sh[k, 1]
            qxS = qx[f] if own else sqx[k, 1]  # old qx of row f
            zN = z[f - 1]
            zS = z[f]
            gN = grp[f - 1]
            gS = grp[f]
            qf = qy[f] if own else sq[k, 1]
            _pow_row_y(zN, hN, zS, hS, dry, pw)
            for j in range(nc):
                qo = qf[j]
                qn = zero
                g0 = gN[j]
                if g0 != 0 and g0 == gS[j]:
                    z0 = zN[j]
                    z1 = zS[j]
                    nf = n2s if nsc else half * (nman[f - 1, j] + nman[f, j])
                    n2 = n2s if nsc else nf * nf
                    qt = quarter * ((qxo[j] + qxo[j + 1]) + (qxS[j] + qxS[j + 1]))
                    qn = _face_q(qo, po[j], qf1[j], qt, z0 + hN[j], z1 + hS[j], max(z0, z1),
                                 pw[j], n2, pd)  # fmt: skip
                po[j] = qo
                qb[j] = qn
                qf[j] = qn  # into qy when owned, else into a spent snapshot row
        # ---- x-faces of cell row f (po now holds the old qy of face row f)
        if f < b:
            r = f
            hr_ = h[r]
            zr = z[r]
            gr = grp[r]
            qxr = qx[r]
            q_prev = qxr[0]
            qxo[0] = q_prev
            qout = _xbound(r, 2, hr_, zr, gr, nman, nsc, qxr, bct, bcv, gdt, dry, inv_dx)
            if qout > 0.0:
                vout += qout * dx * dt
            else:
                vin -= qout * dx * dt
            qxr[0] = -qout
            _pow_row_x(zr, hr_, dry, pw)
            for j in range(1, nc):
                qo = qxr[j]
                qxo[j] = qo
                qn = zero
                g0 = gr[j - 1]
                if g0 != 0 and g0 == gr[j]:
                    z0 = zr[j - 1]
                    z1 = zr[j]
                    nf = n2s if nsc else half * (nman[r, j - 1] + nman[r, j])
                    n2 = n2s if nsc else nf * nf
                    qt = quarter * ((po[j - 1] + po[j]) + (qf1[j - 1] + qf1[j]))
                    qn = _face_q(qo, q_prev, qxr[j + 1], qt, z0 + hr_[j - 1], z1 + hr_[j],
                                 max(z0, z1), pw[j], n2, pd)  # fmt: skip
                qxr[j] = qn
                q_prev = qo
            qxo[nc] = qxr[nc]
            qout = _xbound(r, 3, hr_, zr, gr, nman, nsc, qxr, bct, bcv, gdt, dry, inv_dx)
            if qout > 0.0:
                vout += qout * dx * dt
            else:
                vin -= qout * dx * dt
            qxr[nc] = qout
        # ---- continuity and records of cell row f-1
        if f - 1 >= a:
            r = f - 1
            hr_ = h[r]
            gr = grp[r]
            qxr = qx[r]
            qnr = qy[r]
            nneg = 0
            for j in range(nc):
                if gr[j] == 0:
                    continue
                rain = rain_dt if rsc else rain_dt * rmult[r, j]
                avail = hr_[j] + rain
                loss = inf_dt if inf_dt < avail else avail
                qw = float(qxr[j])
                qe = float(qxr[j + 1])
                qn_ = float(qnr[j])
                qs = float(qb[j])
                hn = (avail - loss) + dtdx * ((qw - qe) + (qn_ - qs))
                hr_[j] = hn
                infil += loss
                if hn < 0.0:
                    nneg += 1
                    continue
                if hn > hmax:
                    hmax = hn
                if hn > maxd[r, j]:
                    maxd[r, j] = hn
                if hn >= dry:
                    inv = 1.0 / hn
                    u = 0.5 * (qw + qe) * inv
                    v = 0.5 * (qn_ + qs) * inv
                    sp = np.sqrt(u * u + v * v)
                    if sp > maxs[r, j]:
                        maxs[r, j] = sp
                    hr = hazard_rating_nb(hn, sp, debris)
                    if hr > maxhr[r, j]:
                        maxhr[r, j] = hr
                    c = aidr_class_nb(hn, sp)
                    if c > maxa[r, j]:
                        maxa[r, j] = c
                if hn >= arr_depth and np.isnan(arr[r, j]):
                    arr[r, j] = t_new
            rowneg[r] = nneg
    chacc[k, 0] = vin
    chacc[k, 1] = vout
    chacc[k, 2] = infil * dx * dx
    chacc[k, 3] = hmax


@njit(parallel=True, cache=True, error_model="numpy")
def step(h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa, arr,
         bct, bcv, starts, sq, sh, sqx, qbot, qyb, pwb, chacc, rowneg, p, pd):  # fmt: skip
    """Advance the state by one step of ``p[P_DT]`` seconds, in place.

    Returns (h_max m, boundary inflow m3, boundary outflow m3, infiltration m3,
    number of cells left with negative depth for :func:`fix_negative`).
    """
    nr, nc = h.shape
    nch = starts.shape[0] - 1
    for k in range(nch):  # serial: a few rows, and cheaper than a second parallel region
        a = starts[k]
        b = starts[k + 1]
        if a > 0:
            sq[k, 0, :] = qy[a - 1]
            sh[k, 0, :] = h[a - 1]
            sqx[k, 0, :] = qx[a - 1]
        if b < nr:
            sq[k, 1, :] = qy[b]
            sh[k, 1, :] = h[b]
            sq[k, 2, :] = qy[b + 1]
            sqx[k, 1, :] = qx[b]
    vin, vout = _ybound(h, z, grp, nman, nsc, qy, bct, bcv, qyb, p)
    if nch == 1:
        # small grids: no parallel region at all (its launch and barrier cost more
        # than the work, and far more when the machine is oversubscribed)
        _chunk(0, 0, nr, h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa,
               arr, bct, bcv, sq, sh, sqx, qbot, qyb, pwb, chacc, rowneg, p, pd)  # fmt: skip
    else:
        # the caller sets the parallel chunk size to 1: chunks are handed out one at a
        # time, so a descheduled thread does not hold back a fixed share of the rows
        for k in prange(nch):
            _chunk(k, starts[k], starts[k + 1], h, z, grp, nman, nsc, rmult, rsc, qx, qy, maxd,
                   maxs, maxhr, maxa, arr, bct, bcv, sq, sh, sqx, qbot, qyb, pwb, chacc,
                   rowneg, p, pd)  # fmt: skip
    hmax = 0.0
    infil = 0.0
    for k in range(nch):
        vin += chacc[k, 0]
        vout += chacc[k, 1]
        infil += chacc[k, 2]
        hmax = max(hmax, chacc[k, 3])
    nneg = 0
    for r in range(nr):
        nneg += rowneg[r]
    return hmax, vin, vout, infil, nneg


@njit(cache=True, error_model="numpy")
def fix_negative(h, qx, qy, rowneg, stack, instack, dt, dx):
    """Remove negative depths by scaling down the outflows of the cells concerned.

    A cell left with depth -D < 0 after a step has outflow volume O >= D (its
    start depth, rain and inflow are never negative). Its outgoing face
    discharges are scaled by ``s = 1 - D/O``, which leaves it exactly empty;
    the water not sent is taken back from the receiving cells (which may then
    need the same treatment) or from the boundary outflow. Fluxes stay equal on
    both sides of every face, so mass is conserved exactly.

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
    while top > 0:
        top -= 1
        cell = stack[top]
        instack[cell] = 0
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
        if out <= 0.0:
            lost -= hc * area
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
            if h[rr, jj] < 0.0 and instack[nb] == 0:
                stack[top] = nb
                instack[nb] = 1
                top += 1
    return bcorr, lost


@njit(cache=True, error_model="numpy")
def add_depth(h, rows, cols, dd):
    """Add depth ``dd[i]`` (m) to cell (rows[i], cols[i]); returns the max depth touched."""
    m = 0.0
    for i in range(rows.shape[0]):
        h[rows[i], cols[i]] += dd[i]
        m = max(m, float(h[rows[i], cols[i]]))
    return m
