"""Scaling report: what adding workers buys on the cluster you have.

:func:`report` measures, for each worker count asked for, the throughput of preprocessing
(``mlkit.data``), training (``mlkit.train.xgboost``), tuning (``mlkit.tune``) and batch scoring
(``mlkit.serve.batch_predict``), the latency of the served model (``mlkit.serve.start``) under
concurrent clients, and accuracy against training-set size; each throughput with its ideal
(linear) line and efficiency. It returns a tidy table, draws the plots, writes one
self-contained HTML file and logs everything to one MLflow run.

Attributes load lazily (lazy_loader): importing this package imports neither dask nor pandas.

Examples
--------
>>> import mlkit
>>> rep = mlkit.scaling.report(workers=(1, 2), out="scaling")     # doctest: +SKIP
>>> rep.table.head()                                              # doctest: +SKIP

From a shell: ``mlkit scaling-report --workers 1,2 --out scaling``.
"""

import lazy_loader as _lazy

# The names live in __init__.pyi (one list, which editors and type checkers read too).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
