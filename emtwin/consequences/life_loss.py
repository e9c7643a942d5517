"""Life loss: probability of death from the flood each person met, and its spread.

Two published models, chosen by ``consequences.life_loss.method``:

``jonkman``
    Jonkman, Vrijling & Vrouwenvelder (2008), "Methods for the estimation of
    loss of life due to floods: a literature review and a proposal for a new
    method", Natural Hazards 46:353-389: three zones, each with its
    mortality F_D:

    - breach zone, ``h v >= 7 m2/s`` and ``v >= 2 m/s`` (buildings collapse):
      F_D = 1;
    - rapidly rising water, rise rate ``w >= 0.5 m/h`` and ``h >= 2.1 m``:
      F_D(h) = Phi((ln h - 1.46) / 0.28);
    - remaining zone: F_D(h) = Phi((ln h - 7.60) / 2.75);

    h the water depth (m), v the flow speed (m/s), Phi the standard normal CDF.

``lifesim``
    The lethality zones of HEC-LifeSim after McClelland & Bowles (2002, "Estimating
    life loss for dam safety risk assessment", Utah State University): a
    person is in the chance zone (swept away, or the building fails or goes
    under), the compromised zone (the refuge is flooded or unstable) or the
    safe zone, with fatality rates whose means are 0.91, 0.12 and 0.0002.
    Zones here are assigned from the hazard where the person is, by where
    they are (see :func:`lifesim_zone`), with the stability limits of the
    Australian AIDR Guideline 7-3 hazard classes.

Both are event models: a person's probability comes from the worst conditions
met over the run (:class:`LifeLossTracker` keeps those maxima each coupling
step), not from a sum over steps, which would count the same water many times.
Deaths are independent Bernoulli trials with these probabilities: the expected
loss is their sum and the 5-95 % range comes from the exact Poisson-binomial
distribution (:func:`loss_distribution`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from emtwin.consequences.defaults import STOREY_HEIGHT_M, WET_DEPTH_M
from emtwin.errors import InputDataError
from emtwin.kernels.hazard_rating import aidr_class

__all__ = [
    "JONKMAN_2008",
    "LIFESIM_RATES",
    "LOCATIONS",
    "ZONE_NAMES",
    "jonkman_zone",
    "jonkman_mortality",
    "lifesim_zone",
    "lifesim_mortality",
    "rise_rate_m_h",
    "loss_distribution",
    "loss_summary",
    "LifeLossTracker",
]


@dataclass(frozen=True)
class JonkmanParams:
    """Parameters of the mortality functions of Jonkman et al. (2008)."""

    mu_remaining: float = 7.60
    sigma_remaining: float = 2.75
    mu_rapid: float = 1.46
    sigma_rapid: float = 0.28
    rapid_rise_m_h: float = 0.5
    rapid_depth_m: float = 2.1
    breach_hv_m2_s: float = 7.0
    breach_speed_m_s: float = 2.0
    breach_mortality: float = 1.0


#: The published parameters.
JONKMAN_2008 = JonkmanParams()

#: Mean fatality rates of the LifeSim lethality zones (McClelland & Bowles 2002),
#: by zone code 0 safe, 1 compromised, 2 chance.
LIFESIM_RATES: tuple[float, float, float] = (0.0002, 0.12, 0.91)

#: Where a person is, as codes for :func:`lifesim_zone` and the tracker:
#: -1 out of the hazard (sheltered dry, left the area), 0 in a building (at
#: home or in a shelter), 1 in a vehicle, 2 on foot.
LOCATIONS: dict[str, int] = {"out": -1, "building": 0, "vehicle": 1, "foot": 2}

#: Zone names by model and code.
ZONE_NAMES: dict[str, tuple[str, ...]] = {
    "jonkman": ("dry", "remaining", "rapidly_rising", "breach"),
    "lifesim": ("safe", "compromised", "chance"),
}


# ----------------------------------------------------------------------------- Jonkman


def jonkman_zone(
    depth_m: np.ndarray,
    speed_m_s: np.ndarray,
    rise_rate_m_h: np.ndarray,
    *,
    params: JonkmanParams = JONKMAN_2008,
    breach: np.ndarray | None = None,
) -> np.ndarray:
    """Zone of Jonkman et al. (2008): 0 dry, 1 remaining, 2 rapidly rising, 3 breach.

    Parameters
    ----------
    depth_m, speed_m_s, rise_rate_m_h
        Water depth (m), flow speed (m/s) and rate of rise (m/h), broadcast together.
    breach
        Optional boolean: breach conditions already met (a tracker's flag);
        otherwise they are tested on *depth_m* x *speed_m_s*.
    """
    h = np.asarray(depth_m, dtype=np.float64)
    v = np.abs(np.asarray(speed_m_s, dtype=np.float64))
    w = np.asarray(rise_rate_m_h, dtype=np.float64)
    if breach is None:
        breach = (h * v >= params.breach_hv_m2_s) & (v >= params.breach_speed_m_s)
    rapid = (w >= params.rapid_rise_m_h) & (h >= params.rapid_depth_m)
    zone = np.where(breach, 3, np.where(rapid, 2, 1))
    return np.where(h > WET_DEPTH_M, zone, 0).astype(np.int8)


def jonkman_mortality(
    depth_m: np.ndarray | float,
    speed_m_s: np.ndarray | float = 0.0,
    rise_rate_m_h: np.ndarray | float = 0.0,
    *,
    params: JonkmanParams = JONKMAN_2008,
    breach: np.ndarray | None = None,
) -> np.ndarray:
    """Probability of death F_D of Jonkman et al. (2008) (see the module docstring).

    Returns an array of the broadcast shape of the inputs; 0 where dry.
    """
    h = np.asarray(depth_m, dtype=np.float64)
    zone = jonkman_zone(h, speed_m_s, rise_rate_m_h, params=params, breach=breach)
    hh = np.maximum(h, WET_DEPTH_M)
    # F_D(h) = Phi((ln h - mu) / sigma), a lognormal CDF in h
    remaining = stats.lognorm.cdf(hh, s=params.sigma_remaining, scale=np.exp(params.mu_remaining))
    rapid = stats.lognorm.cdf(hh, s=params.sigma_rapid, scale=np.exp(params.mu_rapid))
    p = np.select(
        [zone == 3, zone == 2, zone == 1], [params.breach_mortality, rapid, remaining], 0.0
    )
    return p


# ----------------------------------------------------------------------------- LifeSim


def lifesim_zone(
    depth_m: np.ndarray,
    speed_m_s: np.ndarray,
    location: np.ndarray,
    *,
    top_floor_m: np.ndarray | float = 0.3 + STOREY_HEIGHT_M,
    roof_m: np.ndarray | float = 0.3 + 2 * STOREY_HEIGHT_M,
) -> np.ndarray:
    """LifeSim lethality zone: -1 dry or out, 0 safe, 1 compromised, 2 chance.

    Rules, with the AIDR 7-3 hazard class H of (depth, speed)
    (:func:`emtwin.kernels.hazard_rating.aidr_class`):

    - in a building (``location == 0``): chance when the water reaches the roof
      (``depth >= roof_m``) or H6 (all building types may fail); compromised
      when the top floor is flooded (``depth > top_floor_m``) or H5 (buildings
      structurally damaged); otherwise safe;
    - in a vehicle (1): chance at H3 and above ("unsafe for vehicles"),
      compromised at H2 ("unsafe for small vehicles"), otherwise safe;
    - on foot (2): chance at H4 and above ("unsafe for people"), compromised at
      H3 ("unsafe for children and the elderly"), otherwise safe.

    Parameters
    ----------
    depth_m, speed_m_s
        Water depth above the ground (m) and flow speed (m/s) where each person is.
    location
        Codes of :data:`LOCATIONS`.
    top_floor_m, roof_m
        For people in buildings: height above the ground of the top floor and
        of the roof, m (default: a two-storey house with a 0.3 m ground floor).
    """
    h = np.asarray(depth_m, dtype=np.float64)
    loc = np.asarray(location)
    cls = np.asarray(aidr_class(h, speed_m_s))
    top = np.asarray(top_floor_m, dtype=np.float64)
    roof = np.asarray(roof_m, dtype=np.float64)
    in_bldg = np.where((h >= roof) | (cls >= 6), 2, np.where((h > top) | (cls >= 5), 1, 0))
    in_car = np.where(cls >= 3, 2, np.where(cls == 2, 1, 0))
    on_foot = np.where(cls >= 4, 2, np.where(cls == 3, 1, 0))
    zone = np.select([loc == 0, loc == 1, loc == 2], [in_bldg, in_car, on_foot], -1)
    return np.where((h > WET_DEPTH_M) & (loc >= 0), zone, -1).astype(np.int8)


def lifesim_mortality(
    zone: np.ndarray, *, rates: tuple[float, float, float] = LIFESIM_RATES
) -> np.ndarray:
    """Fatality rate of each LifeSim zone code (-1 -> 0, 0 safe, 1 compromised, 2 chance)."""
    z = np.asarray(zone)
    table = np.array([0.0, *rates])
    return table[z + 1]


# ----------------------------------------------------------------------------- hazard


def rise_rate_m_h(depth_now_m: np.ndarray, depth_before_m: np.ndarray, dt_s: float) -> np.ndarray:
    """Rate of rise of the water, m/h, from two depth rasters *dt_s* seconds apart (>= 0)."""
    if not dt_s > 0:
        raise InputDataError(f"rise_rate_m_h: dt_s must be > 0, got {dt_s}")
    rise = (np.asarray(depth_now_m, float) - np.asarray(depth_before_m, float)) * 3600.0 / dt_s
    return np.maximum(rise, 0.0)


# ----------------------------------------------------------------------------- distribution


def loss_distribution(p: np.ndarray, people: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """Exact distribution of the number of deaths (Poisson-binomial).

    Each of ``people[i]`` persons of group *i* dies independently with
    probability ``p[i]``. The pmf is built by convolution, one group at a
    time (a binomial of the group's size each), trimming tails below 1e-15.

    Returns
    -------
    (k0, pmf)
        ``pmf[j]`` is P(deaths = k0 + j).
    """
    pv = np.clip(np.asarray(p, dtype=np.float64).ravel(), 0.0, 1.0)
    n = np.ones(pv.size, np.int64) if people is None else np.asarray(people).ravel()
    if n.shape != pv.shape:
        raise InputDataError(f"people has shape {n.shape}, expected {pv.shape} like p")
    if (n < 0).any() or not np.allclose(n, np.round(n)):
        raise InputDataError("people must be whole numbers >= 0")
    n = np.round(n).astype(np.int64)
    k0, pmf = 0, np.ones(1)
    sure = (pv >= 1.0) & (n > 0)
    k0 += int(n[sure].sum())
    live = (pv > 0.0) & (pv < 1.0) & (n > 0)
    # many people share the same probability (households): one binomial per value
    pu, inv = np.unique(pv[live], return_inverse=True)
    counts = np.bincount(inv, weights=n[live], minlength=pu.size).astype(np.int64)
    for q, m in zip(pu, counts, strict=True):
        ks = np.arange(m + 1)
        b = stats.binom.pmf(ks, m, q)
        pmf = np.convolve(pmf, b)
        nz = np.flatnonzero(pmf > 1e-15 * pmf.max())
        k0 += int(nz[0])
        pmf = pmf[nz[0] : nz[-1] + 1]
    return k0, pmf / pmf.sum()


def loss_summary(
    p: np.ndarray,
    people: np.ndarray | None = None,
    *,
    quantiles: tuple[float, float] = (0.05, 0.95),
) -> dict[str, float]:
    """``life_loss_mean``, ``life_loss_p5``, ``life_loss_p95`` (persons).

    The mean is sum(people x p); the quantiles are those of the exact
    Poisson-binomial distribution (smallest k with P(deaths <= k) >= q), with
    fractional group sizes rounded to whole persons for it.
    """
    pv = np.asarray(p, dtype=np.float64).ravel()
    n = np.ones(pv.size) if people is None else np.asarray(people, dtype=np.float64).ravel()
    k0, pmf = loss_distribution(pv, np.round(n))
    cdf = np.cumsum(pmf)
    lo, hi = (int(k0 + np.searchsorted(cdf, q - 1e-12)) for q in quantiles)
    return {
        "life_loss_mean": float(np.sum(np.clip(pv, 0, 1) * n)),
        "life_loss_p5": float(lo),
        "life_loss_p95": float(hi),
    }


# ----------------------------------------------------------------------------- tracker


class LifeLossTracker:
    """The worst flood conditions each person (or household) met, step by step.

    Parameters
    ----------
    people
        Persons per tracked agent (a household, a vehicle load), shape (n,).
    method
        ``"jonkman"`` or ``"lifesim"``.
    jonkman
        Parameters of the Jonkman model.
    lifesim_rates
        Fatality rates of the safe, compromised and chance zones.

    Call :meth:`update` every coupling step with the hazard at each agent's
    location; read :meth:`probability` and :meth:`summary` at the end.
    """

    def __init__(
        self,
        people: np.ndarray,
        *,
        method: str = "jonkman",
        jonkman: JonkmanParams = JONKMAN_2008,
        lifesim_rates: tuple[float, float, float] = LIFESIM_RATES,
    ) -> None:
        if method not in ZONE_NAMES:
            raise InputDataError(
                f"life_loss.method: expected one of {', '.join(ZONE_NAMES)}, got {method!r}"
            )
        self.people = np.asarray(people, dtype=np.float64).ravel()
        n = self.people.size
        self.method = method
        self.jonkman = jonkman
        self.lifesim_rates = lifesim_rates
        self.max_depth_m = np.zeros(n)
        self.max_rise_m_h = np.zeros(n)
        self.breach = np.zeros(n, dtype=bool)
        self.zone = np.full(n, -1, dtype=np.int8)  # LifeSim: worst zone so far
        self.exposed = np.zeros(n, dtype=bool)

    def update(
        self,
        depth_m: np.ndarray,
        speed_m_s: np.ndarray,
        rise_rate_m_h: np.ndarray,
        location: np.ndarray,
        *,
        top_floor_m: np.ndarray | float = 0.3 + STOREY_HEIGHT_M,
        roof_m: np.ndarray | float = 0.3 + 2 * STOREY_HEIGHT_M,
    ) -> None:
        """Take one coupling step: the hazard where each agent is now.

        Parameters
        ----------
        depth_m, speed_m_s, rise_rate_m_h
            Depth above the ground (m), flow speed (m/s) and rate of rise (m/h)
            at each agent's location, shape (n,).
        location
            :data:`LOCATIONS` codes, shape (n,): agents out of the hazard
            (-1) are not exposed this step, whatever the water.
        top_floor_m, roof_m
            For agents in buildings (LifeSim): height of the top floor and the
            roof above the ground, m, scalar or shape (n,).
        """
        h = np.asarray(depth_m, dtype=np.float64)
        v = np.abs(np.asarray(speed_m_s, dtype=np.float64))
        w = np.asarray(rise_rate_m_h, dtype=np.float64)
        loc = np.asarray(location)
        if not (h.shape == v.shape == w.shape == loc.shape == self.people.shape):
            raise InputDataError(
                f"LifeLossTracker.update: arrays must all have shape {self.people.shape}"
            )
        here = (loc >= 0) & (h > WET_DEPTH_M)
        self.exposed |= here
        hx = np.where(here, h, 0.0)
        self.max_depth_m = np.maximum(self.max_depth_m, hx)
        self.max_rise_m_h = np.maximum(self.max_rise_m_h, np.where(here, w, 0.0))
        jp = self.jonkman
        self.breach |= here & (hx * v >= jp.breach_hv_m2_s) & (v >= jp.breach_speed_m_s)
        if self.method == "lifesim":
            z = lifesim_zone(h, v, loc, top_floor_m=top_floor_m, roof_m=roof_m)
            self.zone = np.maximum(self.zone, z)

    def probability(self) -> np.ndarray:
        """Probability of death of each person of each agent, shape (n,)."""
        if self.method == "lifesim":
            return lifesim_mortality(self.zone, rates=self.lifesim_rates)
        return jonkman_mortality(
            self.max_depth_m,
            0.0,
            self.max_rise_m_h,
            params=self.jonkman,
            breach=self.breach,
        )

    def zones(self) -> np.ndarray:
        """Zone code of each agent (see :data:`ZONE_NAMES` for the method)."""
        if self.method == "lifesim":
            return self.zone.copy()
        return jonkman_zone(self.max_depth_m, 0.0, self.max_rise_m_h, params=self.jonkman,
                            breach=self.breach)  # fmt: skip

    def summary(self) -> Mapping[str, float]:
        """Expected loss, its 5-95 % range, and ``people_exposed`` (persons)."""
        out = dict(loss_summary(self.probability(), self.people))
        out["people_exposed"] = float(self.people[self.exposed].sum())
        return out
