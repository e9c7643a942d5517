"""Physical defaults used in more than one layer, each written once (SI units).

Kernels, the World builder and the scenario models all import from here, so a
default has one value everywhere. Defaults used by one module only stay there.
"""

__all__ = ["MANNING_N"]

#: Manning's roughness where no value is given, s/m^(1/3) (grass and light
#: vegetation on urban floodplains; Chow 1959, table 5-6).
MANNING_N = 0.035
