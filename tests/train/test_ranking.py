"""mlkit.train.recall_at_k / ndcg_at_k: ranking metrics checked against scikit-learn's NDCG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

import mlkit
from mlkit.exceptions import ConfigError


def _random_case(seed: int, users: int = 40, items: int = 30):
    rng = np.random.default_rng(seed)
    scores = rng.random((users, items))
    truth = rng.random((users, items)) < 0.15
    truth[truth.sum(axis=1) == 0, 0] = True  # every user has at least one relevant item
    ranked = {u: list(np.argsort(-scores[u])) for u in range(users)}
    relevant = {u: list(np.flatnonzero(truth[u])) for u in range(users)}
    return scores, truth, ranked, relevant


@pytest.mark.parametrize("k", [1, 5, 10])
def test_ndcg_matches_scikit_learn_on_binary_relevance(k):
    scores, truth, ranked, relevant = _random_case(seed=k)
    expected = ndcg_score(truth.astype(int), scores, k=k)
    assert mlkit.train.ndcg_at_k(ranked, relevant, k=k) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_recall_is_the_share_of_relevant_items_in_the_top_k(k):
    scores, truth, ranked, relevant = _random_case(seed=100 + k)
    top = np.argsort(-scores, axis=1)[:, :k]
    found = np.take_along_axis(truth, top, axis=1).sum(axis=1)
    expected = float(np.mean(found / truth.sum(axis=1)))
    assert mlkit.train.recall_at_k(ranked, relevant, k=k) == pytest.approx(expected, rel=1e-12)


def test_perfect_and_useless_lists():
    relevant = {"a": [1, 2], "b": [3]}
    assert mlkit.train.recall_at_k({"a": [2, 1, 9], "b": [3, 8]}, relevant, k=3) == 1.0
    assert mlkit.train.ndcg_at_k({"a": [2, 1, 9], "b": [3, 8]}, relevant, k=3) == 1.0
    assert mlkit.train.recall_at_k({"a": [7, 8], "b": [9]}, relevant, k=2) == 0.0
    # a hit below the cut-off does not count
    assert mlkit.train.recall_at_k({"a": [9, 9, 1], "b": [3]}, relevant, k=2) == 0.5


def test_a_user_without_a_list_scores_zero_and_users_without_relevant_items_are_ignored():
    relevant = {"a": [1], "b": [2], "c": []}
    assert mlkit.train.recall_at_k({"a": [1]}, relevant, k=5) == 0.5
    assert mlkit.train.ndcg_at_k({"a": [1], "c": [4]}, relevant, k=5) == 0.5


def test_pandas_inputs_a_frame_of_ranked_columns_and_a_series_of_lists():
    frame = pd.DataFrame({"item_1": [5, 7], "item_2": [6, 8]}, index=[10, 20])
    relevant = pd.Series({10: [6], 20: [1, 7]})
    assert mlkit.train.recall_at_k(frame, relevant, k=2) == pytest.approx((1 + 0.5) / 2)
    as_dict = {10: [5, 6], 20: [7, 8]}
    assert mlkit.train.ndcg_at_k(frame, relevant, k=2) == mlkit.train.ndcg_at_k(
        as_dict, relevant, k=2)


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(ConfigError, match="k must be a positive integer, but got k=0"):
        mlkit.train.recall_at_k({1: [1]}, {1: [1]}, k=0)
    with pytest.raises(ConfigError, match="no user with a relevant item"):
        mlkit.train.ndcg_at_k({1: [1]}, {1: []}, k=3)
    with pytest.raises(ConfigError, match="recommended must map each user"):
        mlkit.train.recall_at_k([[1, 2]], {0: [1]}, k=3)
