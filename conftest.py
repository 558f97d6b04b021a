"""Shared by every pytest run here; the doctest stage of ``make test`` (``pytest --doctest-modules
mlkit``) has no tests/conftest.py, so what its examples need is set up here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _doctest_home(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    # an example that plans a cluster or opens the tracking store writes into the mlkit home:
    # a fresh one per example, not the checkout's .mlkit/
    if isinstance(request.node, DoctestItem):
        monkeypatch.setenv("MLKIT_HOME", str(tmp_path_factory.mktemp("mlkit-home")))
    yield
