"""MLflow with nothing to set up: defaults, lineage and runs that always end in a final state.

Attributes load lazily (lazy_loader), so importing this package does not import MLflow.

Examples
--------
>>> import mlkit
>>> uri = mlkit.track.configure()          # doctest: +SKIP
>>> with mlkit.track.run("my-run"):        # doctest: +SKIP
...     pass
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={"_defaults": ["configure", "run", "tracking_uri", "artifact_root"]},
)
