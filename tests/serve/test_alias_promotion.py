"""Promoting an alias moves a gateway's traffic to the new version with zero dropped requests,
over real HTTP: 6 clients keep scoring ``/models/promo/champion`` while ``mlkit.track.promote``
moves ``champion`` from version 1 to version 2 (the opposite labels); the gateway notices by
itself, starts version 2's replica, swaps the route and drains version 1."""

from __future__ import annotations

import collections
import json
import random
import threading

import pytest

from tests._wait import wait_for

pytestmark = pytest.mark.timeout(900)


def test_promotion_under_load_drops_nothing_and_moves_traffic(demo, helpers):
    import psutil
    import requests

    import mlkit

    with helpers.home_env(demo.home):
        v1 = helpers.log_model(demo.model, demo.X, "promo")
        flipped = helpers.fit_pipeline(demo.X, flip=True)
        v2 = helpers.log_model(flipped, demo.X, "promo")
        mlkit.track.promote("promo", v1)
        srv = mlkit.serve.start("models:/promo@champion", replicas=1, name="gw-promo",
                                timeout=600)
    expected = {v1: demo.model.predict(demo.X), v2: flipped.predict(demo.X)}
    assert (expected[v1] != expected[v2]).any()
    old_pid = srv.replicas()[0]["pid"]
    stop = threading.Event()
    by_version = collections.Counter()
    failures = []

    def client(k: int) -> None:
        s = requests.Session()
        s.trust_env = False
        rng = random.Random(k)
        while not stop.is_set():
            rows = rng.sample(range(len(demo.X)), rng.randrange(1, 6))
            body = json.dumps({"dataframe_split": demo.X.iloc[rows].to_dict(orient="split")})
            try:
                r = s.post(f"{srv.url}/invocations", data=body, timeout=120,
                           headers={"Content-Type": "application/json"})
            except Exception as exc:  # noqa: BLE001 - a dropped request is a failure
                failures.append(repr(exc))
                continue
            version = r.headers.get("x-mlkit-model-version")
            # each answer is the one of the version that says it answered
            if r.status_code != 200 or version not in expected \
                    or r.json()["predictions"] != expected[version][rows].tolist():
                failures.append((r.status_code, version, r.text[:200]))
            else:
                by_version[version] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: by_version[v1] >= 50, what="50 answers from version 1")
        with helpers.home_env(demo.home):
            mlkit.track.promote("promo", v2)
        wait_for(lambda: by_version[v2] >= 1, timeout=600, what="an answer from version 2")
        at_switch = dict(by_version)
        wait_for(lambda: by_version[v2] >= at_switch[v2] + 100, what="100 more from version 2")
        after = dict(by_version)
        wait_for(lambda: by_version[v2] >= after[v2] + 50, what="50 more from version 2")
        # the switch is final: once version 1 drained, only version 2 answers
        assert by_version[v1] == after[v1]
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        print(f"\npromotion under 6 clients: {dict(by_version)} answers by version, "
              f"{len(failures)} failed")
        assert not failures, failures[:5]
        reps = srv.replicas()
        assert len(reps) == 1 and reps[0]["healthy"] and reps[0]["pid"] != old_pid
        wait_for(lambda: not psutil.pid_exists(old_pid)
                 or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE,
                 what="version 1's replica stopped after draining")
        routes = requests.get(f"{srv.gateway_url}/models", timeout=10).json()["routes"]
        assert [(r["labels"], r["version"]) for r in routes] == [(["champion", v2], v2)]
        assert srv.refresh() == []  # nothing left to move
    finally:
        with helpers.home_env(demo.home):
            srv.stop()
