"""How much work each measurement of a scaling report does: small by default, ``scale`` for more.

The defaults are small, so that a 2-core machine measures workers 1,2 in minutes; such small
runs mostly measure fixed costs (task scheduling, starting a collective), so their efficiencies
are lower than a real workload's. ``Sizes().scaled(8)`` does eight times the work of each step.

Examples
--------
>>> Sizes().rows, Sizes().scaled(4).rows
(20000, 80000)
>>> Sizes(clients=(1, 8, 32)).clients
(1, 8, 32)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from mlkit import _args
from mlkit.exceptions import ConfigArgumentError, ConfigError

__all__ = ["Sizes"]


def _positive_int(name: str, value: Any) -> int:
    return _args.positive_int(name, value, error=ConfigArgumentError)


@dataclass(frozen=True)
class Sizes:
    """The work each measurement does.

    Attributes
    ----------
    rows : int
        Rows of the synthetic table (preprocessed, trained on, scored in batch).
    features : int
        Numeric feature columns (two string columns are added, for the encoders).
    partitions : int
        Parquet files / dask partitions of the table (enough to keep every worker busy).
    rounds : int
        Boosting rounds per training.
    trials : int
        Tuning trials per worker count (each a small single-threaded xgboost on ``trial_rows``).
    trial_rows : int
        Rows each tuning trial trains on.
    requests : int
        HTTP requests each concurrent client sends to the served model (one row each).
    clients : tuple of int
        Concurrent clients the served model's latency is measured under.
    train_fractions : tuple of float
        Shares of the training rows the accuracy curve is measured at (on the largest worker
        count).

    Examples
    --------
    >>> Sizes(rows=10).rows
    Traceback (most recent call last):
    ...
    mlkit.exceptions.ConfigError: rows must be at least 1,000 (the table is split ...), but got 10
    """

    rows: int = 20_000
    features: int = 10
    partitions: int = 8
    rounds: int = 20
    trials: int = 8
    trial_rows: int = 2_000
    requests: int = 20
    clients: tuple[int, ...] = (1, 8)
    train_fractions: tuple[float, ...] = (0.1, 0.3, 1.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name not in ("clients", "train_fractions"):
                _positive_int(f.name, getattr(self, f.name))
        if self.rows < 1000:
            raise ConfigError(
                "rows must be at least 1,000 (the table is split into train, test and "
                f"partitions), but got {self.rows!r}"
            )
        clients = self.clients
        if isinstance(clients, int) and not isinstance(clients, bool):
            clients = (clients,)
        if not isinstance(clients, (tuple, list)) or not clients:
            raise ConfigError(f"clients must be counts of concurrent clients, got {clients!r}")
        for c in clients:
            _positive_int(f"clients={clients!r}: each count", c)
        fractions = self.train_fractions
        if not isinstance(fractions, (tuple, list)) or not fractions:
            raise ConfigError(f"train_fractions must be shares in (0, 1], got {fractions!r}")
        for f_ in fractions:
            ok = isinstance(f_, (int, float)) and not isinstance(f_, bool) and 0 < f_ <= 1
            if not ok:
                raise ConfigError(
                    f"train_fractions={fractions!r}: each share must be in (0, 1], got {f_!r}"
                )
        object.__setattr__(self, "clients", tuple(sorted(set(int(c) for c in clients))))
        object.__setattr__(self, "train_fractions", tuple(sorted(set(float(f) for f in fractions))))

    def scaled(self, scale: int) -> Sizes:
        """These sizes with ``scale`` times the rows, rounds, trials and requests.

        Examples
        --------
        >>> Sizes().scaled(2).trials
        16
        """
        _positive_int("scale", scale)
        return replace(
            self,
            rows=self.rows * scale,
            rounds=self.rounds * scale,
            trials=self.trials * scale,
            trial_rows=self.trial_rows * scale,
            requests=self.requests * scale,
        )

    def to_dict(self) -> dict[str, Any]:
        """The sizes as a plain dict (MLflow params, the HTML header)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
