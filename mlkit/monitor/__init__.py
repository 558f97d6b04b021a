"""Watch models in production: drift statistics on cluster-sized data, drift reports, prediction
logs of served models, a feedback loop, and feature attributions.

Attributes load lazily (lazy_loader): importing this package imports neither pandas nor dask.

Examples
--------
>>> import mlkit
>>> prof = mlkit.monitor.reference_profile(train_ddf)            # doctest: +SKIP
>>> live = mlkit.monitor.predictions("churn", since="1h")       # doctest: +SKIP
>>> report = mlkit.monitor.drift(prof, live)                      # doctest: +SKIP
>>> report.drifted                                                 # doctest: +SKIP
"""

import lazy_loader as _lazy

# The names live in __init__.pyi (one list, which editors and type checkers read too).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
