"""Every default of the consequence models, in one place, with its source.

The scenario section ``consequences:`` (:mod:`emtwin.scenarios.consequences`),
the building reader (:mod:`emtwin.geo.buildings`), the depth-damage curves
(:mod:`emtwin.consequences.curves`) and the life-loss models
(:mod:`emtwin.consequences.life_loss`) all read their defaults from here; see
``docs/consequences.md`` for the reasoning behind each number.
"""

from __future__ import annotations

__all__ = [
    "OCCUPANCIES",
    "CONTINENTS",
    "VALUE_PER_M2",
    "CONTENT_SHARE",
    "FIRST_FLOOR_HEIGHT_M",
    "STOREY_HEIGHT_M",
    "DEFAULT_LEVELS",
    "FACILITY_FAIL_DEPTH_M",
    "SITE_KINDS",
    "OSM_BUILDING_OCCUPANCY",
    "OSM_AMENITY_OCCUPANCY",
    "OSM_KIND",
    "DEFAULT_OCCUPANCY",
    "WET_DEPTH_M",
]

#: Occupancy classes of buildings: the sectors of Huizinga et al. (2017). Their
#: "commercial" class holds offices, shops, hotels, schools and hospitals.
OCCUPANCIES: tuple[str, ...] = ("residential", "commercial", "industrial")

#: Continents of the JRC global depth-damage functions (Huizinga et al. 2017).
CONTINENTS: tuple[str, ...] = (
    "europe",
    "north_america",
    "south_america",
    "asia",
    "africa",
    "oceania",
)

#: Occupancy of a building whose data and tags say nothing (OSM ``building=yes``):
#: most untagged buildings in OSM are homes.
DEFAULT_OCCUPANCY = "residential"

#: Replacement value of the building structure per m2 of floor area (footprint
#: x levels), currency units of the scenario (default EUR). Indicative
#: placeholders of the order of Western-European construction costs (the kind
#: of figure Huizinga et al. 2017 derive per country); they are not read from
#: a published table. They set the scale of ``damage`` only, not the ratios:
#: replace them with local figures.
VALUE_PER_M2: dict[str, float] = {
    "residential": 600.0,
    "commercial": 700.0,
    "industrial": 500.0,
}

#: Content value as a share of the structure value, per occupancy, used when
#: content damage is on: the content-to-structure ratios of FEMA's HAZUS-MH
#: flood model (residential 50 %, commercial 100 %, industrial 150 %).
CONTENT_SHARE: dict[str, float] = {
    "residential": 0.5,
    "commercial": 1.0,
    "industrial": 1.5,
}

#: Height of the ground floor above the ground, m (Delft-FIAT's ``ground_flht``):
#: damage curves are read at the water depth minus this. 0.3 m is the slab-on-
#: grade first-floor height of HAZUS-MH (about 1 ft) for homes; shops and
#: industry are taken at street level plus a threshold (an assumption).
FIRST_FLOOR_HEIGHT_M: dict[str, float] = {
    "residential": 0.3,
    "commercial": 0.15,
    "industrial": 0.15,
}

#: Height of one storey, m (for the number of levels from a height, and for the
#: floor a person can climb to in the life-loss zones).
STOREY_HEIGHT_M = 3.0

#: Levels of a building that has no ``levels`` / ``building:levels``.
DEFAULT_LEVELS: dict[str, int] = {"residential": 2, "commercial": 2, "industrial": 1}

#: Water depth at a facility (m above the ground) above which it loses its
#: function: ground-floor plant, wards and bays under water. Planning
#: assumptions, not published thresholds: set them per type, or per site
#: (``consequences.sites``). Substation 0.3 m: the assumed height of the lowest
#: live parts of ground-mounted switchgear, control and protection cabinets and
#: their cable entries. Pump 0.5 m: the assumed height of the motor, starter and
#: control panel of a drainage pumping station whose wet well is meant to be
#: wet (its pumps work under water; its electrics do not).
FACILITY_FAIL_DEPTH_M: dict[str, float] = {
    "hospital": 0.3,
    "shelter": 0.3,
    "station": 0.5,
    "substation": 0.3,
    "pump": 0.5,
}

#: Facility types given as sites in ``consequences.sites`` / ``sites_from`` (the
#: others come from the World's place layers).
SITE_KINDS: tuple[str, ...] = ("substation", "pump")

#: A cell with less water than this is dry (Delft-FIAT drops hazard values of
#: 0.0001 and less, ``fiat.methods.flood.calculate_hazard``), m.
WET_DEPTH_M = 1e-4

#: OSM ``building=*`` values -> occupancy (others: see :data:`DEFAULT_OCCUPANCY`).
OSM_BUILDING_OCCUPANCY: dict[str, str] = {
    **dict.fromkeys(
        (
            "house", "detached", "semidetached_house", "terrace", "residential",
            "apartments", "bungalow", "dormitory", "farm", "cabin", "static_caravan",
            "houseboat", "hut",
        ),
        "residential",
    ),
    **dict.fromkeys(
        (
            "commercial", "retail", "office", "supermarket", "kiosk", "hotel", "school",
            "university", "college", "kindergarten", "hospital", "public", "civic",
            "government", "church", "chapel", "mosque", "temple", "synagogue", "cathedral",
            "train_station", "transportation", "fire_station", "sports_hall", "stadium",
            "museum",
        ),
        "commercial",
    ),
    **dict.fromkeys(
        (
            "industrial", "warehouse", "factory", "manufacture", "hangar", "storage_tank",
            "service", "garage", "garages", "shed", "barn", "farm_auxiliary", "greenhouse",
            "silo", "transformer_tower", "digester", "water_tower",
        ),
        "industrial",
    ),
}  # fmt: skip

#: OSM ``amenity=*`` values -> occupancy (a public building is "commercial").
OSM_AMENITY_OCCUPANCY: dict[str, str] = dict.fromkeys(
    (
        "school", "kindergarten", "college", "university", "hospital", "clinic", "doctors",
        "fire_station", "police", "townhall", "library", "community_centre", "place_of_worship",
        "restaurant", "cafe", "bank", "pharmacy", "marketplace", "theatre", "cinema",
    ),
    "commercial",
)  # fmt: skip

#: OSM ``amenity`` / ``building`` values -> the facility kind a building plays
#: (kept in the ``kind`` column; other buildings get their ``building`` value).
OSM_KIND: dict[str, str] = {
    "hospital": "hospital",
    "clinic": "hospital",
    "school": "school",
    "kindergarten": "school",
    "college": "school",
    "university": "school",
    "fire_station": "station",
    "police": "station",
}
