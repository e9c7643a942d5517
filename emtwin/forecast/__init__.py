"""The twin loop: observations, assimilation, forecast skill and forecast products.

One module per job, pure and testable without running a simulation:

- :mod:`emtwin.forecast.observations`: gauge and rain observations, read and checked;
- :mod:`emtwin.forecast.assimilation`: particle filter and ensemble-Kalman update;
- :mod:`emtwin.forecast.members`: uncertain draws as arrays, one assimilation step;
- :mod:`emtwin.forecast.skill`: weighted quantiles, RMSE, CRPS, band coverage;
- :mod:`emtwin.forecast.products`: risk map, road closures, gauge fans, files;
- :mod:`emtwin.forecast.watch`: new observation files in a folder, forecast history.
"""

from emtwin.forecast import assimilation, members, observations, products, skill, watch

__all__ = ["assimilation", "members", "observations", "products", "skill", "watch"]
