"""MLflow with nothing to set up: defaults, lineage, dataset fingerprints and a model registry.

* A SQLite store under the mlkit home (artifacts beside it), safe for many writer processes;
  ``MLFLOW_TRACKING_URI``, when set, wins.
* :func:`run` opens a run with lineage tags (:func:`lineage_tags`: git commit and dirty flag,
  notebook, Python and package versions, cluster) that always ends FINISHED, FAILED or KILLED.
* :func:`log_dataset` records a dataset's fingerprint as an MLflow dataset input.
* :func:`register`, :func:`promote`, :func:`list_models`: the registry by alias.
* :func:`enable` / :func:`disable` (``%mlscale track on|off``): whether mlkit's APIs open runs
  on their own.
* :func:`serve_tracking` / :func:`stop_tracking`: an MLflow tracking server (database backend,
  ``--serve-artifacts``, basic auth beyond loopback) for workers on other hosts.

Attributes load lazily (lazy_loader), so importing this package does not import MLflow.

Examples
--------
>>> import mlkit
>>> uri = mlkit.track.configure()          # doctest: +SKIP
>>> with mlkit.track.run("my-run"):        # doctest: +SKIP
...     pass
"""

import lazy_loader as _lazy

# The names live in __init__.pyi (one list, which editors and type checkers read too).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
