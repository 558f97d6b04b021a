"""MLflow with nothing to set up: defaults, lineage and runs that always end in a final state.

Examples
--------
>>> import mlkit
>>> uri = mlkit.track.configure()          # doctest: +SKIP
>>> with mlkit.track.run("my-run"):        # doctest: +SKIP
...     pass
"""

from mlkit.track._defaults import configure, run, tracking_uri

__all__ = ["configure", "run", "tracking_uri"]
