"""Numba CUDA kernels that reduce the device state to what the coupling reads (private).

See :meth:`emtwin.kernels.flood_cuda.CudaFloodModel.edge_depths`,
:meth:`~emtwin.kernels.flood_cuda.CudaFloodModel.depths_at` and
:meth:`~emtwin.kernels.flood_cuda.CudaFloodModel.depth_stats`: per coupling
step only these small results come back to the host, not the depth grid.
"""

from __future__ import annotations

from numba import cuda, float64

from emtwin.kernels._flood_cuda import MAX_THREADS, _max

#: Threads per block of the 1-D kernels here (a power of two, <= MAX_THREADS).
THREADS = 256


@cuda.jit
def edge_max(indptr, cells, h, out):
    """Deepest water (m) under each road edge: ``out[e]`` = max of ``h`` over
    flat cells ``cells[indptr[e]:indptr[e + 1]]`` (0 when none; negatives count
    as 0). One thread per edge; ``h`` 2-D, cells ``row * ncols + col``."""
    e = cuda.grid(1)
    nc = h.shape[1]
    if e < out.shape[0]:
        m = 0.0
        for k in range(indptr[e], indptr[e + 1]):
            c = cells[k]
            r = c // nc
            d = float(h[r, c - r * nc])
            if d > m:
                m = d
        out[e] = m


@cuda.jit
def gather(h, cells, out):
    """``out[k] = h`` at flat cell ``cells[k]`` (m); one thread per entry."""
    k = cuda.grid(1)
    nc = h.shape[1]
    if k < out.shape[0]:
        c = cells[k]
        r = c // nc
        out[k] = h[r, c - r * nc]


@cuda.jit
def stats(h, region, use_region, thr, buf):
    """Cells with depth >= ``thr`` (m), sum of depths (m) and max depth (m)
    over the cells where ``region`` is non-zero (all when not ``use_region``),
    added into ``buf`` (float64: count, sum, max; zeroed by the caller) with
    one atomic each per block. Grid-stride over the flat cells; blocks of
    :data:`THREADS` threads."""
    nr, nc = h.shape
    n = nr * nc
    tid = cuda.threadIdx.x
    cnt = 0.0
    tot = 0.0
    mx = -1.0e300
    i = cuda.grid(1)
    while i < n:
        r = i // nc
        c = i - r * nc
        if not use_region or region[r, c] != 0:
            d = float(h[r, c])
            if d >= thr:
                cnt += 1.0
            tot += d
            mx = _max(mx, d)
        i += cuda.gridDim.x * cuda.blockDim.x
    s_cnt = cuda.shared.array(MAX_THREADS, float64)
    s_tot = cuda.shared.array(MAX_THREADS, float64)
    s_max = cuda.shared.array(MAX_THREADS, float64)
    s_cnt[tid] = cnt
    s_tot[tid] = tot
    s_max[tid] = mx
    cuda.syncthreads()
    k = cuda.blockDim.x // 2
    while k > 0:
        if tid < k:
            s_cnt[tid] += s_cnt[tid + k]
            s_tot[tid] += s_tot[tid + k]
            s_max[tid] = _max(s_max[tid], s_max[tid + k])
        cuda.syncthreads()
        k //= 2
    if tid == 0:
        cuda.atomic.add(buf, 0, s_cnt[0])
        cuda.atomic.add(buf, 1, s_tot[0])
        cuda.atomic.max(buf, 2, s_max[0])
