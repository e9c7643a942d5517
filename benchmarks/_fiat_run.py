"""``fiat run SETTINGS`` with one fix for Delft-FIAT 0.4.0 (run with FIAT's interpreter).

FIAT 0.4.0's ``BufferedGeomWriter.__init__`` (fiat/fio.py) reads the layer
definition of the output file inside a ``with open_geom(...)`` block and uses
it after the block has closed the dataset: a use-after-free that crashes
(SIGSEGV in ``FeatureDefn.GetGeomType``) with the GDAL 3.6 bindings. Here the
dataset it comes from is kept open; nothing else of FIAT is changed.

    /work/fiatvenv/bin/python benchmarks/_fiat_run.py settings.toml
"""

import sys

import fiat.fio as fio
from fiat.cli.main import main
from osgeo import ogr

_open = []  # datasets kept open for the life of the run
_init = fio.BufferedGeomWriter.__init__


def _init_kept(self, file, srs, layer_defn=None, **kw):  # noqa: ANN001, ANN003, D103
    if layer_defn is None:
        ds = ogr.Open(str(file))
        _open.append(ds)
        layer_defn = ds.GetLayer().GetLayerDefn()
    _init(self, file, srs, layer_defn, **kw)


fio.BufferedGeomWriter.__init__ = _init_kept

if __name__ == "__main__":
    sys.argv = ["fiat", "run", *sys.argv[1:]]
    sys.exit(main())
