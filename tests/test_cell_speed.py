"""The one-pass cell speed (emtwin.kernels.cell_speed) against hand-computed and NumPy values."""

from __future__ import annotations

import numpy as np
import pytest

from emtwin.kernels._flood_numba import FROUDE_MAX, G
from emtwin.kernels.cell_speed import cell_speed, cell_speed_at
from emtwin.kernels.flood import FloodModel


def _numpy_speed(h: np.ndarray, qx: np.ndarray, qy: np.ndarray, dry: float) -> np.ndarray:
    """The NumPy expression the kernel replaces (FloodModel.velocity, then hypot)."""
    h = h.astype(np.float64)
    inv = np.divide(1.0, h, out=np.zeros_like(h), where=h >= dry)
    u = 0.5 * (qx[:, :-1] + qx[:, 1:]) * inv
    v = -0.5 * (qy[:-1, :] + qy[1:, :]) * inv
    s = np.hypot(u, v)
    cap = np.sqrt(FROUDE_MAX**2 * G * h)
    k = np.divide(cap, s, out=np.ones_like(s), where=s > cap)
    return np.hypot(u * k, v * k)


def test_hand_computed_two_by_two():
    # cell (0, 0): 2 m deep, x-faces 1 and 3 m2/s (u = 2/2 = 1 m/s), y-faces -2 and -6
    # (north positive: v = 4/2 = 2 m/s): speed sqrt(5); cell (0, 1): 4 m deep,
    # x-faces 3 and 5 (u = 1), y-faces 0 and 0: speed 1; row 1: dry (speed 0
    # whatever the faces carry); cell (1, 1) is wet with no flow: 0
    h = np.array([[2.0, 4.0], [1e-6, 1.0]])
    qx = np.array([[1.0, 3.0, 5.0], [7.0, 0.0, 0.0]])
    qy = np.array([[-2.0, 0.0], [-6.0, 0.0], [0.0, 0.0]])
    s = cell_speed(h, qx, qy, 1e-3)
    np.testing.assert_allclose(s, [[np.sqrt(5.0), 1.0], [0.0, 0.0]], rtol=1e-15)
    assert s.dtype == np.float64
    np.testing.assert_allclose(cell_speed_at(h, qx, qy, 1e-3, np.array([0, 1, 2])),
                               [np.sqrt(5.0), 1.0, 0.0], rtol=1e-15)  # fmt: skip


def test_speed_over_a_film_is_held_to_froude_three():
    """Cell (0, 0): 1 cm of water with 0.2 m2/s through each x-face (q / h = 20 m/s,
    Froude 64): the speed reported is FROUDE_MAX sqrt(g h) = 3 sqrt(0.0981) = 0.9396
    m/s, in the direction of the flow (the velocity's components scaled alike). Cell
    (0, 1): 1 m with faces of 0.2 and 3 m2/s (1.6 m/s, Froude 0.51) keeps q / h."""
    h = np.array([[0.01, 1.0]])
    qx = np.array([[0.2, 0.2, 3.0]])
    qy = np.array([[0.0, 0.0], [0.0, 0.0]])
    cap = 3.0 * np.sqrt(9.81 * 0.01)
    np.testing.assert_allclose(cell_speed(h, qx, qy, 1e-3), [[cap, 1.6]], rtol=1e-12)
    m = FloodModel(np.zeros((1, 2)), None, 1.0, h0=h)
    m._qx[:] = qx
    u, v = m.velocity()
    np.testing.assert_allclose(u, [[cap, 1.6]], rtol=1e-12)
    assert v.tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bit_identical_to_numpy(dtype):
    rng = np.random.default_rng(3)
    nr, nc = 60, 70
    h = (rng.random((nr, nc)) * 3.0 * (rng.random((nr, nc)) > 0.5)).astype(dtype)
    h[::4, ::3] = 1e-5  # below the dry tolerance, with flow on the faces
    qx = rng.normal(size=(nr, nc + 1)).astype(dtype)
    qy = rng.normal(size=(nr + 1, nc)).astype(dtype)
    qx[:20], qy[:21] = 0.0, 0.0  # still water: the zero shortcut
    ref = _numpy_speed(h, qx, qy, 1e-4)
    got = cell_speed(h, qx, qy, 1e-4)
    assert np.array_equal(got.view(np.int64), ref.view(np.int64))
    cells = rng.integers(0, h.size, 200)
    at = cell_speed_at(h, qx, qy, 1e-4, cells)
    assert np.array_equal(at.view(np.int64), ref.reshape(-1)[cells].view(np.int64))


def test_cells_outside_the_grid_fail():
    h = np.ones((2, 2))
    with pytest.raises(IndexError, match="cell indices"):
        cell_speed_at(h, np.zeros((2, 3)), np.zeros((3, 2)), 1e-3, np.array([4]))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_model_speed_matches_its_velocity(dtype):
    # a sloping channel run for a while: speed() and speeds_at() are hypot(velocity())
    nr, nc = 12, 40
    z = np.tile(np.linspace(2.0, 0.0, nc), (nr, 1))
    m = FloodModel(z, np.ones((nr, nc), bool), 10.0, dtype=dtype)
    m.add_inflow(np.arange(2, 10), np.zeros(8, int), np.array([0.0, 1e6]), np.array([5.0, 5.0]))
    m.set_boundary("east", "open")
    m.advance(600.0)
    ref = np.hypot(*m.velocity())
    assert ref.max() > 0.1
    assert np.array_equal(m.speed(), ref)
    cells = np.array([0, 5 * nc + 3, 7 * nc + 20, nr * nc - 1])
    assert np.array_equal(m.speeds_at(cells), ref.reshape(-1)[cells])
