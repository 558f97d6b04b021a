"""The scaling report's tidy table: one row per measurement, with its ideal line and efficiency.

Columns: ``measure``, ``workers``, ``clients`` (served-model rows only), ``train_rows``
(accuracy rows only), ``value``, ``unit``, ``ideal``, ``efficiency``, ``seconds`` (wall time of
the measurement).

The ideal of a throughput is linear scaling from the smallest worker count measured:
``ideal(n) = value(n0) * n / n0``; ``efficiency = value / ideal`` (1.0 at ``n0`` by
definition; 0.8 at 2 workers means the second worker added 60% of what the first gave).
Latencies, the served model's request rate (one server process, whatever the cluster's size)
and accuracy have no ideal line (NaN).

Examples
--------
>>> import pandas as pd
>>> t = with_ideal(pd.DataFrame({"measure": ["train", "train"], "workers": [1, 2],
...                              "value": [10.0, 15.0], "unit": ["rounds/s"] * 2}))
>>> t[["workers", "ideal", "efficiency"]].to_dict("list")
{'workers': [1, 2], 'ideal': [10.0, 20.0], 'efficiency': [1.0, 0.75]}
"""

from __future__ import annotations

from typing import Any

__all__ = ["COLUMNS", "THROUGHPUT", "LABELS", "with_ideal", "metric_name"]

COLUMNS = [
    "measure", "workers", "clients", "train_rows", "value", "unit", "ideal", "efficiency",
    "seconds",
]

#: Measures that should grow with the workers (they get an ideal line and an efficiency).
THROUGHPUT = ("preprocess", "train", "tune", "batch_score")

#: What each measure is, for plot titles and the HTML report.
LABELS = {
    "preprocess": "preprocessing (mlkit.data)",
    "train": "training (mlkit.train.xgboost)",
    "tune": "tuning (mlkit.tune)",
    "batch_score": "batch scoring (mlkit.serve.batch_predict)",
    "latency_p50": "served model latency p50",
    "latency_p99": "served model latency p99",
    "serve_rate": "served model requests/s",
    "accuracy": "test accuracy against training rows",
}


def with_ideal(records: Any) -> Any:
    """A tidy DataFrame of ``records`` with ``ideal`` and ``efficiency`` filled in.

    ``records`` is a DataFrame or a list of dicts with at least ``measure``, ``workers``,
    ``value`` and ``unit``. Throughputs are compared within the same ``clients`` level.
    """
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(records).copy()
    for col in COLUMNS:
        if col not in df:
            df[col] = np.nan
    df = df[COLUMNS]
    df["workers"] = df["workers"].astype("int64")
    for col in ("clients", "train_rows"):
        df[col] = df[col].astype("Int64")
    df["ideal"] = np.nan
    df["efficiency"] = np.nan
    clients_key = df["clients"].astype("float64").fillna(0)
    for (measure, _), idx in df.groupby([df["measure"], clients_key]).groups.items():
        if measure not in THROUGHPUT:
            continue
        group = df.loc[idx]
        base = group.loc[group["workers"].idxmin()]
        ideal = base["value"] * group["workers"] / base["workers"]
        df.loc[idx, "ideal"] = ideal
        df.loc[idx, "efficiency"] = group["value"] / ideal
    order = {m: i for i, m in enumerate(LABELS)}
    df["_order"] = df["measure"].map(order).fillna(len(order))
    df = df.sort_values(["_order", "clients", "workers", "train_rows"], kind="stable")
    return df.drop(columns="_order").reset_index(drop=True)


def metric_name(row: Any, what: str = "value") -> str:
    """The MLflow metric key of one table row, e.g. ``train_rounds_per_s/w2``.

    Examples
    --------
    >>> metric_name({"measure": "latency_p99", "unit": "ms", "workers": 1, "clients": 8,
    ...              "train_rows": None})
    'latency_p99_ms/w1_c8'
    """
    import pandas as pd

    unit = str(row["unit"]).replace("/", "_per_").replace(" ", "_")
    stem = f"{row['measure']}_{unit}" if what == "value" else f"{row['measure']}_{what}"
    where = f"w{int(row['workers'])}"
    if row.get("clients") is not None and not pd.isna(row["clients"]):
        where += f"_c{int(row['clients'])}"
    if row.get("train_rows") is not None and not pd.isna(row["train_rows"]):
        where += f"_rows{int(row['train_rows'])}"
    return f"{stem}/{where}"
