"""Hazard rating functions against hand-computed values (references.md section 3)."""

from __future__ import annotations

import numpy as np
import pytest

from emtwin.kernels import (
    aidr_class,
    aidr_class_nb,
    hazard_rating,
    hazard_rating_nb,
    hr_class,
    hr_class_nb,
    pregnolato_speed_factor,
    pregnolato_speed_factor_nb,
)


@pytest.mark.parametrize(
    "d, v, debris, hr, cls",
    [
        (0.5, 1.0, 1.0, 1.75, 3),  # 0.5 (1 + 0.5) + 1: significant
        (0.5, 1.0, 0.5, 1.25, 3),  # pasture DF: 1.25 opens "significant"
        (0.2, 1.0, 1.0, 0.3, 1),  # below 0.25 m no debris: low
        (0.25, 0.5, 1.0, 1.25, 3),  # DF applies from 0.25 m
        (0.3, 0.0, 0.5, 0.65, 1),  # low
        (1.0, 1.0, 1.0, 2.5, 4),  # extreme
        (0.6, 1.25, 0.0, 1.05, 2),  # moderate
        (0.0, 3.0, 1.0, 0.0, 0),  # dry
    ],
)
def test_hazard_rating_points(d, v, debris, hr, cls):
    got = hazard_rating(d, v, debris)
    assert got == pytest.approx(hr, abs=1e-12)
    assert hazard_rating_nb(d, v, debris) == pytest.approx(hr, abs=1e-12)
    assert hr_class(got) == hr_class_nb(got) == cls


def test_hr_class_edges():
    hr = np.array([0.0, 0.1, 0.7499, 0.75, 1.2499, 1.25, 2.0, 2.0001])
    assert hr_class(hr).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
    assert [hr_class_nb(x) for x in hr] == [0, 1, 1, 2, 2, 3, 3, 4]


def test_hazard_rating_vectorised_broadcasts():
    d = np.array([[0.1], [0.5]])
    v = np.array([0.0, 2.0])
    hr = hazard_rating(d, v)
    assert hr.shape == (2, 2)
    np.testing.assert_allclose(hr, [[0.05, 0.25], [1.25, 2.25]])


@pytest.mark.parametrize(
    "d, v, cls",
    [
        (0.3, 1.0, 1),  # dv = 0.3, d = 0.3: H1
        (0.31, 1.0, 2),  # dv 0.31 > 0.3: H2
        (0.1, 2.0, 1),  # v = 2.0 still H1 (dv 0.2)
        (0.1, 2.01, 5),  # v > 2: H5
        (0.5, 1.2, 2),  # dv 0.6, d 0.5: H2
        (0.51, 1.0, 3),  # d > 0.5: H3
        (1.2, 0.5, 3),  # dv 0.6, d 1.2: H3
        (1.21, 0.1, 4),  # d > 1.2: H4
        (2.0, 0.5, 4),  # dv 1.0, d 2.0: H4
        (2.01, 0.1, 5),  # H5
        (1.0, 4.0, 5),  # dv 4, v 4: H5
        (4.01, 0.0, 6),  # d > 4: H6
        (0.5, 4.1, 6),  # v > 4: H6
        (0.0, 1.0, 0),  # dry
    ],
)
def test_aidr_classes(d, v, cls):
    assert aidr_class(d, v) == cls
    assert aidr_class_nb(d, v) == cls


def test_aidr_vectorised_matches_scalar():
    rng = np.random.default_rng(0)
    d = rng.uniform(-0.1, 5.0, 2000)
    v = rng.uniform(0.0, 5.0, 2000)
    got = aidr_class(d, v)
    assert got.dtype == np.int8
    assert got.tolist() == [aidr_class_nb(a, b) for a, b in zip(d, v, strict=True)]
    hr = hazard_rating(d, v, 0.5)
    assert np.allclose(hr, [hazard_rating_nb(a, b, 0.5) for a, b in zip(d, v, strict=True)])


def test_pregnolato_speed_factor():
    dry = 86.9448
    for w in (0.0, 50.0, 100.0, 200.0, 299.0):
        expect = (0.0009 * w * w - 0.5529 * w + dry) / dry
        assert pregnolato_speed_factor(w / 1000.0) == pytest.approx(expect, rel=1e-12)
        assert pregnolato_speed_factor_nb(w / 1000.0, 0.3) == pytest.approx(expect, rel=1e-12)
    assert pregnolato_speed_factor(0.1) == pytest.approx((9.0 - 55.29 + dry) / dry)
    depths = np.array([-0.1, 0.0, 0.3, 0.31, 1.0, np.nan])
    got = pregnolato_speed_factor(depths)
    assert got.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert [pregnolato_speed_factor_nb(x, 0.3) for x in depths] == got.tolist()
    # a lower closure depth closes earlier
    assert pregnolato_speed_factor(0.2, closure_depth_m=0.15) == 0.0
    assert np.all(np.diff(pregnolato_speed_factor(np.linspace(0, 0.29, 50))) < 0)
