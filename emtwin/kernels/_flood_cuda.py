"""Numba CUDA kernels of the flood step (private; see :mod:`emtwin.kernels.flood_cuda`).

The same physics as the CPU step in :mod:`emtwin.kernels._flood_numba`
(docs/flood.md), laid out for a GPU: one thread per face or cell, in three
launches per step.

1. :func:`faces`: the new discharge on every face from the old state (x-face
   ``(i, j)`` and y-face ``(i, j)`` for thread ``(i, j)``, boundary faces
   included), written to a second pair of arrays (double buffer), so that
   every face reads old values whatever the thread order. Boundary in/out
   volumes go into the float64 ledger accumulators by atomics (only edge
   threads add).
2. :func:`continuity`: per cell, rain, infiltration and the net face flow,
   in float64, then the running records. The infiltration (sum) and the new
   h_max (max) are reduced per block in shared memory and added to the
   accumulators with one atomic per block; cells left negative are counted
   per row and in total (the flag the host reads).
3. Only when that flag is set: :func:`fix_negative_kernel`, one thread that
   runs the CPU's sequential repair (:func:`emtwin.kernels._flood_numba.fix_negative`,
   the same Python source compiled for the device).

Face momentum runs in the state dtype (its constants come in ``pd``, typed),
continuity and boundary faces in float64, as on the CPU. ``h_f^(-7/3)`` is
``1 / (h_f^2 cbrt(h_f))`` with libdevice's cube root on a GPU (``FACES``; the
simulator, which has no libdevice, runs the plain power of :func:`faces`).
Arrays ``acc`` (float64, 4): boundary inflow, boundary outflow, infiltration
(m3, running totals since the start) and unplaced volume; ``stepbuf``
(float64, 2): h_max (m) and the number of negative cells of the last step,
the only values the host reads per step.
"""

from __future__ import annotations

import math
import types

from numba import cuda, float64
from numba.cuda import libdevice

from emtwin.kernels._flood_lts import _fric as _lts_fric
from emtwin.kernels._flood_numba import (
    BC_CLOSED,
    BC_LEVEL,
    FR2G,
    G,
    _from_neighbours,
    fix_negative,
)

#: Threads per block of the 2-D kernels (x along columns, y along rows); the
#: product must be a power of two no larger than :data:`MAX_THREADS`.
BLOCK = (32, 8)
MAX_THREADS = 256

# Indices into the state-dtype constant vector ``pd`` (see :func:`device_params`).
(C_THETA, C_C1, C_INVDX, C_DRY, C_N2, C_ZERO, C_ONE, C_HALF, C_QUARTER, C_M73, C_DEBRIS,
 C_03, C_06, C_12, C_2, C_4, C_FR2G) = range(17)  # fmt: skip
N_CONST = 17
# Indices into the float64 accumulators ``acc`` and the per-step buffer ``stepbuf``.
A_IN, A_OUT, A_INF, A_LOST = range(4)
S_HMAX, S_NNEG = range(2)


def device_params(theta: float, dx: float, dry_tol: float, n_scalar: float,
                  debris: float) -> tuple[float, ...]:  # fmt: skip
    """The values of ``pd`` (to be stored in the state dtype): see the ``C_*`` indices."""
    return (theta, 0.5 * (1.0 - theta), 1.0 / dx, dry_tol, n_scalar * n_scalar, 0.0, 1.0,
            0.5, 0.25, -7.0 / 3.0, debris, 0.3, 0.6, 1.2, 2.0, 4.0, FR2G)  # fmt: skip


# The built-in max/min of two numbers do not compile for the CUDA target of
# Numba 0.68 (their overload takes *args; "Signature mismatch"), and the
# simulator, which runs plain Python, would not notice: hence these two.


@cuda.jit(device=True)
def _max(a, b):
    """The larger of a and b (a when equal)."""
    return a if a >= b else b


@cuda.jit(device=True)
def _min(a, b):
    """The smaller of a and b (a when equal)."""
    return a if a <= b else b


@cuda.jit(device=True)
def _m73_pow(x, pd):
    """``x^(-7/3)`` as a plain power (the simulator's version: it has no libdevice)."""
    return x ** pd[C_M73]


@cuda.jit(device=True)
def _m73_f64(x, pd):
    """``x^(-7/3)`` for x > 0 in float64 as ``1 / (x^2 cbrt(x))``.

    libdevice's cbrt is exact to about 1 ulp like pow, and about 4 times
    cheaper (80 PTX instructions against 311): the face kernel is bound by
    arithmetic, not memory, and this power is most of it.
    """
    return pd[C_ONE] / (x * x * libdevice.cbrt(x))


@cuda.jit(device=True)
def _m73_f32(x, pd):
    """``x^(-7/3)`` for x > 0 in float32 as ``1 / (x^2 cbrtf(x))`` (48 PTX instructions
    against 156 for powf)."""
    return pd[C_ONE] / (x * x * libdevice.cbrtf(x))


# The power used by _face_q; the per-dtype kernels below rebind it.
_m73 = _m73_pow


@cuda.jit(device=True)
def _bnd_q(q_out, q_in, kind, val, h_c, z_c, eta_in, has_in, n2, gdt, dry_tol, inv_dx, theta):
    """New outward unit discharge on a domain-edge face, m2/s (as the CPU ``_bnd_q``).

    Everything in float64; ``kind`` BC_LEVEL: ghost level ``val`` (m), with
    ``q_out`` weighted ``(1 + theta) / 2`` and the old outward discharge of the
    edge cell's inner face ``q_in`` ``(1 - theta) / 2``;
    BC_OPEN: free outflow with friction slope ``val`` when > 0, else the
    extrapolated water-surface slope, floored at 0.
    """
    if kind == BC_CLOSED:
        return 0.0
    eta_c = z_c + h_c
    if kind == BC_LEVEL:
        hf = _max(val, eta_c) - z_c
        if hf <= dry_tol:
            return 0.0
        fr = gdt * n2 * abs(q_out) * hf ** (-7.0 / 3.0)
        qw = 0.5 * (1.0 + theta) * q_out + 0.5 * (1.0 - theta) * q_in
        return (qw - gdt * hf * (val - eta_c) * inv_dx) / (1.0 + fr)
    hf = h_c
    if hf <= dry_tol:
        return 0.0
    if val > 0.0:
        s = val
    elif has_in:
        s = _max(eta_in - eta_c, 0.0) * inv_dx
    else:
        s = 0.0
    q0 = _max(q_out, 0.0)
    fr = gdt * n2 * q0 * hf ** (-7.0 / 3.0)
    return (q0 + gdt * hf * s) / (1.0 + fr)


# The implicit friction of local steps at levels >= 1, the CPU's Python source (with
# math's square root for NumPy's, which the CUDA target does not type on scalars).
_fric = cuda.jit(device=True)(types.FunctionType(
    _lts_fric.py_func.__code__, {**_lts_fric.py_func.__globals__, "np": math}, "_fric_dev"))


@cuda.jit(device=True)
def _face_q(e0, e1, z0, z1, g0, g1, n0, n1, nsc, q, ql, qr, qt, pd, gdt, imp):
    """New discharge on an interior face between cells 0 and 1 (state dtype), m2/s.

    ``q+ = (theta q + (1-theta)/2 (q_l + q_r) - g h_f dt (eta1 - eta0)/dx)
    / (1 + g dt n^2 sqrt(q^2 + q_t^2) / h_f^(7/3))``; 0 where the face is
    closed (group codes differ or 0) or ``h_f <= dry_tol``. With *imp* the
    friction takes the new discharge's magnitude instead of the old
    (:func:`emtwin.kernels._flood_lts._fric`; local steps of level >= 1).
    """
    hf = _max(e0, e1) - _max(z0, z1)
    if g0 == 0 or g0 != g1 or not hf > pd[C_DRY]:
        return pd[C_ZERO]
    if nsc:
        pw = pd[C_N2] * _m73(hf, pd)
    else:
        nf = pd[C_HALF] * (n0 + n1)
        pw = (pd[C_ONE] * _m73(hf, pd)) * (nf * nf)
    num = pd[C_THETA] * q + pd[C_C1] * (ql + qr) - gdt * hf * (e1 - e0) * pd[C_INVDX]
    if imp:
        return _fric(num, qt, gdt * pw, pd[C_ONE])
    den = pd[C_ONE] + gdt * math.sqrt(q * q + qt * qt) * pw
    return num / den


@cuda.jit(device=True)
def _edge(qf, qi, kind, bv, sgn, hc, zc, gc, eta_in, has_in, nn, dt, dx, dry, theta):
    """A grid-edge face: ``(q m2/s, in m3, out m3)`` over *dt*, from the old discharge
    *qf* (+ east or south) and that of the edge cell's inner face *qi*, the boundary
    *kind* and value *bv*, *sgn* -1 on the west or north edge, the edge cell's depth, bed
    and group code, the water level of the cell inside it (*eta_in*, where *has_in*), its
    Manning n *nn* and the theta weighting."""
    qout = 0.0
    if kind != BC_CLOSED and gc == 1:
        qout = _bnd_q(sgn * qf, sgn * qi, kind, bv, hc, zc, eta_in, has_in, float(nn * nn),
                      G * dt, dry, 1.0 / dx, theta)  # fmt: skip
    if qout > 0.0:
        return sgn * qout, 0.0, qout * dx * dt
    return sgn * qout, -(qout * dx * dt), 0.0


@cuda.jit(device=True)
def add_volumes(acc, vin, vout):
    """Add a thread's boundary inflow and outflow (m3) to the ledger accumulators."""
    if vin != 0.0:
        cuda.atomic.add(acc, A_IN, vin)
    if vout != 0.0:
        cuda.atomic.add(acc, A_OUT, vout)


@cuda.jit(device=True)
def x_face(i, j, h, z, grp, nman, nsc, qx, qy, pd, gdt, bct, bvw, bve, dt, dx, dry, imp):
    """New discharge of x-face j of row i (west of cell j; 0 and ncols on the grid edges)
    from the old state, with the boundary inflow and outflow volumes over *dt* (m3):
    ``(q m2/s, in, out)``. ``gdt`` = g dt in the state dtype; ``bvw``, ``bve`` the values
    of the west and east boundaries; ``dt`` s, ``dx`` m, ``dry`` m in float64; *imp*:
    interior faces with implicit friction (see :func:`_face_q`)."""
    nc = h.shape[1]
    if j == 0 or j == nc:
        west = j == 0
        c = 0 if west else nc - 1
        ci = 1 if west else nc - 2
        has_in = ci >= 0 and ci < nc and grp[i, ci] != 0
        return _edge(float(qx[i, j]), float(qx[i, 1 if west else nc - 1]),
                     bct[2] if west else bct[3], bvw if west else bve,
                     -1.0 if west else 1.0, float(h[i, c]), float(z[i, c]), grp[i, c],
                     float(z[i, ci]) + float(h[i, ci]) if has_in else 0.0, has_in,
                     nman[0, 0] if nsc else nman[i, c], dt, dx, dry,
                     float(pd[C_THETA]))  # fmt: skip
    qt = pd[C_QUARTER] * ((qy[i, j - 1] + qy[i, j]) + (qy[i + 1, j - 1] + qy[i + 1, j]))
    q = _face_q(z[i, j - 1] + h[i, j - 1], z[i, j] + h[i, j], z[i, j - 1], z[i, j],
                grp[i, j - 1], grp[i, j], nman[i, j - 1] if not nsc else pd[C_ZERO],
                nman[i, j] if not nsc else pd[C_ZERO], nsc, qx[i, j], qx[i, j - 1],
                qx[i, j + 1], qt, pd, gdt, imp)  # fmt: skip
    return float(q), 0.0, 0.0


@cuda.jit(device=True)
def y_face(i, j, h, z, grp, nman, nsc, qx, qy, pd, gdt, bct, bvn, bvs, dt, dx, dry, imp):
    """New discharge of y-face row i (north of cell row i; 0 and nrows on the grid edges)
    at column j, with the boundary volumes: as :func:`x_face`."""
    nr = h.shape[0]
    if i == 0 or i == nr:
        north = i == 0
        r = 0 if north else nr - 1
        ri = 1 if north else nr - 2
        has_in = ri >= 0 and ri < nr and grp[ri, j] != 0
        return _edge(float(qy[i, j]), float(qy[1 if north else nr - 1, j]),
                     bct[0] if north else bct[1], bvn if north else bvs,
                     -1.0 if north else 1.0, float(h[r, j]), float(z[r, j]), grp[r, j],
                     float(z[ri, j]) + float(h[ri, j]) if has_in else 0.0, has_in,
                     nman[0, 0] if nsc else nman[r, j], dt, dx, dry,
                     float(pd[C_THETA]))  # fmt: skip
    qt = pd[C_QUARTER] * ((qx[i - 1, j] + qx[i - 1, j + 1]) + (qx[i, j] + qx[i, j + 1]))
    q = _face_q(z[i - 1, j] + h[i - 1, j], z[i, j] + h[i, j], z[i - 1, j], z[i, j],
                grp[i - 1, j], grp[i, j], nman[i - 1, j] if not nsc else pd[C_ZERO],
                nman[i, j] if not nsc else pd[C_ZERO], nsc, qy[i, j], qy[i - 1, j],
                qy[i + 1, j], qt, pd, gdt, imp)  # fmt: skip
    return float(q), 0.0, 0.0


@cuda.jit
def faces(h, z, grp, nman, nsc, qx, qy, qxn, qyn, pd, gdt, bct, bv0, bv1, bv2, bv3, dt, dx,
          dry, acc, stepbuf, rowneg):  # fmt: skip
    """New discharges of all faces into ``qxn`` (nr, nc + 1) and ``qyn`` (nr + 1, nc).

    Launch on at least (nc + 1) x (nr + 1) threads (x = column, y = row).
    ``gdt`` = g dt in the state dtype; ``bct`` the boundary kinds (north,
    south, west, east) and ``bv0..bv3`` their values (level m, or open
    slope); ``dt`` s, ``dx`` m, ``dry`` m in float64. Also resets
    ``stepbuf`` and ``rowneg`` for :func:`continuity`.
    """
    j, i = cuda.grid(2)
    nr, nc = h.shape
    if i == 0 and j == 0:
        stepbuf[S_HMAX] = 0.0
        stepbuf[S_NNEG] = 0.0
    if j == 0 and i < nr:
        rowneg[i] = 0
    vin = 0.0
    vout = 0.0
    if i < nr and j <= nc:
        q, a, b = x_face(i, j, h, z, grp, nman, nsc, qx, qy, pd, gdt, bct, bv2, bv3, dt, dx, dry,
                         False)  # fmt: skip
        qxn[i, j] = q
        vin += a
        vout += b
    if j < nc and i <= nr:
        q, a, b = y_face(i, j, h, z, grp, nman, nsc, qx, qy, pd, gdt, bct, bv0, bv1, dt, dx, dry,
                         False)  # fmt: skip
        qyn[i, j] = q
        vin += a
        vout += b
    add_volumes(acc, vin, vout)


@cuda.jit(device=True)
def records(i, j, d, qx, qy, maxd, maxs, maxhr, maxa, arr, pd, t_new, arr_depth):
    """The running records of cell (i, j) at its new depth *d* (state dtype), its speed
    from the discharges of its four faces in ``qx``, ``qy`` (at most FROUDE_MAX
    sqrt(g d)): max depth, max speed, max
    FD2320 HR, max AIDR class, and the arrival time *t_new* (s) at *arr_depth* (m)."""
    zero = pd[C_ZERO]
    if d > maxd[i, j]:
        maxd[i, j] = d
    if d >= pd[C_DRY]:
        u2 = qx[i, j] + qx[i, j + 1]
        v2 = qy[i, j] + qy[i + 1, j]
        w = pd[C_QUARTER] * (u2 * u2 + v2 * v2)  # (FROUDE_MAX, as the CPU's records)
        lim = pd[C_FR2G] * d * d * d
        v = math.sqrt(w if w <= lim else lim) / d
        if v > maxs[i, j]:
            maxs[i, j] = v
        hz = d * (v + pd[C_HALF]) + (pd[C_DEBRIS] if d >= pd[C_QUARTER] else zero)
        if hz > maxhr[i, j]:
            maxhr[i, j] = hz
        dv = d * v
        c = 1
        if not ((dv <= pd[C_03]) and (d <= pd[C_03]) and (v <= pd[C_2])):
            c += 1
        if not ((dv <= pd[C_06]) and (d <= pd[C_HALF]) and (v <= pd[C_2])):
            c += 1
        if not ((dv <= pd[C_06]) and (d <= pd[C_12]) and (v <= pd[C_2])):
            c += 1
        if not ((dv <= pd[C_ONE]) and (d <= pd[C_2]) and (v <= pd[C_2])):
            c += 1
        if not ((dv <= pd[C_4]) and (d <= pd[C_4]) and (v <= pd[C_4])):
            c += 1
        if c > maxa[i, j]:
            maxa[i, j] = c
    if math.isnan(arr[i, j]) and d >= arr_depth:
        arr[i, j] = t_new


@cuda.jit(device=True)
def reduce_block(s_sum, s_max, loss, hm, acc, i_sum, scale, buf, i_max):
    """Sum *loss* and take the max of *hm* over the threads of a block (shared arrays
    *s_sum*, *s_max*; a power-of-two block), then add ``sum * scale`` to ``acc[i_sum]``
    and the max to ``buf[i_max]`` with one atomic each. Every thread of the block must
    call it."""
    tid = cuda.threadIdx.y * cuda.blockDim.x + cuda.threadIdx.x
    nt = cuda.blockDim.x * cuda.blockDim.y
    s_sum[tid] = loss
    s_max[tid] = hm
    cuda.syncthreads()
    k = nt // 2
    while k > 0:
        if tid < k:
            s_sum[tid] += s_sum[tid + k]
            s_max[tid] = _max(s_max[tid], s_max[tid + k])
        cuda.syncthreads()
        k //= 2
    if tid == 0:
        if s_sum[0] != 0.0:
            cuda.atomic.add(acc, i_sum, s_sum[0] * scale)
        cuda.atomic.max(buf, i_max, s_max[0])


@cuda.jit
def continuity(h, grp, rmult, rsc, qx, qy, maxd, maxs, maxhr, maxa, arr, pd, rain_dt, inf_dt,
               dtdx, area, t_new, arr_depth, acc, stepbuf, rowneg):  # fmt: skip
    """Continuity and records of every cell, with the new discharges ``qx``, ``qy``.

    ``h+ = h + rain - min(inf, h + rain) + dt/dx (q_in - q_out)`` in float64
    (``rain_dt``, ``inf_dt`` m over the step; ``rmult`` the per-cell rain
    factor unless ``rsc``); then the records (:func:`records`; ``t_new`` s,
    ``arr_depth`` m). Infiltration (m3, times ``area`` m2) and h_max are
    reduced per block. Launch on at least nc x nr threads with blocks of a
    power-of-two size.
    """
    j, i = cuda.grid(2)
    nr, nc = h.shape
    s_inf = cuda.shared.array(MAX_THREADS, float64)
    s_max = cuda.shared.array(MAX_THREADS, float64)
    loss = 0.0
    hm = 0.0
    if i < nr and j < nc:
        if grp[i, j] != 0:
            rain = rain_dt if rsc else rain_dt * float(rmult[i, j])
            avail = float(h[i, j]) + rain
            loss = _min(inf_dt, avail)
            h[i, j] = (avail - loss) + dtdx * ((float(qx[i, j]) - float(qx[i, j + 1]))
                                               + (float(qy[i, j]) - float(qy[i + 1, j])))
        d = h[i, j]  # back in the state dtype
        hm = _max(float(d), 0.0) if d == d else math.inf  # NaN: make the step's max inf
        if d < pd[C_ZERO]:
            cuda.atomic.add(rowneg, i, 1)
            cuda.atomic.add(stepbuf, S_NNEG, 1.0)
        records(i, j, d, qx, qy, maxd, maxs, maxhr, maxa, arr, pd, t_new, arr_depth)
    reduce_block(s_inf, s_max, loss, hm, acc, A_INF, area, stepbuf, S_HMAX)


@cuda.jit
def add_depth(h, rows, cols, dd):
    """Add ``dd[k]`` (m, state dtype) to cell (rows[k], cols[k]); one thread per entry."""
    k = cuda.grid(1)
    if k < rows.shape[0]:
        cuda.atomic.add(h, (rows[k], cols[k]), dd[k])


# The CPU's repair, the same Python source compiled for the device, with the
# built-in max/min it calls bound to the device versions above.
#: The repair's taking of a deficit from the cells around (a device function).
from_neighbours_dev = cuda.jit(device=True)(types.FunctionType(
    _from_neighbours.py_func.__code__,
    {**_from_neighbours.py_func.__globals__, "max": _max, "min": _min},
    "from_neighbours_dev",
))  # fmt: skip
_fix_negative_dev = cuda.jit(device=True)(types.FunctionType(
    fix_negative.py_func.__code__,
    {**fix_negative.py_func.__globals__, "max": _max, "min": _min,
     "_from_neighbours": from_neighbours_dev},
    "fix_negative_device",
))  # fmt: skip


@cuda.jit
def fix_negative_kernel(h, qx, qy, rowneg, stack, instack, dt, dx, acc):
    """The CPU's sequential negative-depth repair, on one device thread.

    Launch as ``[1, 1]``. The boundary outflow it takes back is subtracted
    from ``acc[A_OUT]``; any unplaced volume (m3) is added to ``acc[A_LOST]``.
    """
    if cuda.grid(1) == 0:
        bcorr, lost = _fix_negative_dev(h, qx, qy, rowneg, stack, instack, dt, dx)
        acc[A_OUT] -= bcorr
        acc[A_LOST] += lost


def _rebind(fn, name: str, **names):
    """The Python source of the CUDA function *fn* with the global *names* replaced."""
    py = fn.py_func
    return types.FunctionType(py.__code__, {**py.__globals__, **names}, name)


def face_kernel(kernel, m73, suffix: str):
    """The face kernel *kernel* (:func:`faces`, or one that calls :func:`x_face` and
    :func:`y_face` the same way) compiled with ``h_f^(-7/3)`` from the device function
    *m73*."""
    face_q = cuda.jit(device=True)(_rebind(_face_q, f"_face_q_{suffix}", _m73=m73))
    xf = cuda.jit(device=True)(_rebind(x_face, f"x_face_{suffix}", _face_q=face_q))
    yf = cuda.jit(device=True)(_rebind(y_face, f"y_face_{suffix}", _face_q=face_q))
    name = kernel.py_func.__name__
    return cuda.jit(_rebind(kernel, f"{name}_{suffix}", x_face=xf, y_face=yf))


#: The face kernel a real GPU runs, by state dtype name: the power through
#: libdevice's cube root. :func:`faces` itself (a plain power) is what the
#: simulator runs, since it has no libdevice.
FACES = {"float32": face_kernel(faces, _m73_f32, "f32"),
         "float64": face_kernel(faces, _m73_f64, "f64")}
