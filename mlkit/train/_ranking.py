"""Ranking metrics for recommenders: recall@k and NDCG@k over users, binary relevance.

Both take the same two mappings, keyed by user: the ranked items a model recommends (best
first) and the items each user actually went on to interact with (the held-out, later part of
a time-based split). Users are averaged with equal weight over those with at least one
relevant item; a user the model has no list for scores 0 (a cold-start user is not skipped).

Examples
--------
>>> import mlkit
>>> recommended = {"ann": [3, 1, 7], "bob": [2, 5, 9]}
>>> relevant = {"ann": [1, 4], "bob": [9]}
>>> mlkit.train.recall_at_k(recommended, relevant, k=3)      # ann 1/2, bob 1/1
0.75
>>> round(mlkit.train.ndcg_at_k(recommended, relevant, k=3), 3)
0.443
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from mlkit import _args
from mlkit.exceptions import ConfigArgumentError, ConfigError

__all__ = ["recall_at_k", "ndcg_at_k"]


def _as_mapping(value: Any, what: str) -> Mapping[Any, Iterable[Any]]:
    """A dict, a pandas Series of lists, or a DataFrame whose rows are ranked items."""
    if isinstance(value, Mapping):
        return value
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pd = None
    if pd is not None and isinstance(value, pd.DataFrame):
        return {user: row.dropna().tolist() for user, row in value.iterrows()}
    if pd is not None and isinstance(value, pd.Series):
        return value.to_dict()
    raise ConfigError(
        f"{what} must map each user to a sequence of items (a dict, a pandas Series of lists "
        f"or a DataFrame with one ranked row per user), got {type(value).__name__}"
    )


def _check(recommended: Any, relevant: Any, k: int) -> tuple[Mapping, dict[Any, set]]:
    _args.positive_int("k", k, error=ConfigArgumentError)
    rec = _as_mapping(recommended, "recommended")
    rel = {u: set(items) for u, items in _as_mapping(relevant, "relevant").items()}
    rel = {u: items for u, items in rel.items() if items}
    if not rel:
        raise ConfigError("relevant has no user with a relevant item: nothing to evaluate")
    return rec, rel


def _hits(ranked: Iterable[Any] | None, wanted: set, k: int) -> list[bool]:
    if ranked is None:
        return []
    return [item in wanted for item in list(ranked)[:k]]


def recall_at_k(recommended: Any, relevant: Any, k: int = 10) -> float:
    """Mean over users of the share of their relevant items found in their top ``k``.

    Parameters
    ----------
    recommended : mapping user -> ranked items
        A dict, a pandas Series of lists, or a DataFrame with one row of ranked items per
        user (index = user). Only the first ``k`` items of each list count.
    relevant : mapping user -> items
        What each user interacted with in the evaluation period (order ignored).
    k : int
        Cut-off.

    Returns
    -------
    float
        In [0, 1]: ``mean_u |top_k(u) & relevant(u)| / |relevant(u)|``.

    Examples
    --------
    >>> recall_at_k({1: [10, 11]}, {1: [11, 12]}, k=2)
    0.5
    """
    rec, rel = _check(recommended, relevant, k)
    total = sum(sum(_hits(rec.get(u), items, k)) / len(items) for u, items in rel.items())
    return total / len(rel)


def ndcg_at_k(recommended: Any, relevant: Any, k: int = 10) -> float:
    """Mean over users of the normalised discounted cumulative gain of their top ``k``.

    A hit at rank ``r`` (1-based) gains ``1 / log2(r + 1)``; the sum is divided by the gain of
    the best possible list (all ``min(k, |relevant|)`` first places hits), so 1.0 means every
    slot that could hold a relevant item does, in the first places.

    Parameters
    ----------
    recommended, relevant, k :
        As for :func:`recall_at_k`.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> ndcg_at_k({1: [11, 10]}, {1: [11]}, k=2)
    1.0
    """
    rec, rel = _check(recommended, relevant, k)
    total = 0.0
    for user, items in rel.items():
        dcg = sum(1 / math.log2(r + 2) for r, hit in enumerate(_hits(rec.get(user), items, k))
                  if hit)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(items))))
        total += dcg / ideal
    return total / len(rel)
