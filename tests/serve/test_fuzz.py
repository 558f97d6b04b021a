"""Reliability: malformed requests never crash, 5xx or disconnect a served model.

At least 1,000 malformed requests (invalid JSON, JSON lists and scalars, wrong keys, missing
columns, extra-plus-missing columns, values of the wrong type, wrong content types, broken CSV
and Parquet bodies, multi-megabyte bodies, wrong methods) interleaved with valid requests, over
one keep-alive connection, against both the plain ``mlflow models serve`` server and mlkit's
instrumented one. Every malformed request must get a 4xx, every valid one a 200 with the
model's own predictions, no connection may drop, and the same process answers /ping at the end.
"""

from __future__ import annotations

import collections
import json
import random

import pytest

MALFORMED_PER_SERVER = 1000
VALID_EVERY = 4  # one valid request after every 4 malformed ones
BIG = 2 * 1024 * 1024  # bytes in a "large body"


def _records(X, rows):
    return X.iloc[rows].to_dict(orient="records")


def _malformed_cases(X, rng: random.Random):
    """Yield (category, method, content_type, body) for requests the server must refuse."""
    cols = ["f0", "f1", "f2", "color"]
    good = json.dumps({"dataframe_records": _records(X, [0, 1, 2])})
    generators = []

    def invalid_json():
        choice = rng.randrange(6)
        if choice == 0:
            return good[: rng.randrange(1, len(good) - 1)]  # truncated
        if choice == 1:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        if choice == 2:
            return "{bad json" + "x" * rng.randrange(50)
        if choice == 3:
            return ""
        if choice == 4:
            return good.replace(":", "=", 1)
        return "{'dataframe_records': [{'f0': 1}]}"  # Python repr, not JSON

    def json_lists_and_scalars():
        return json.dumps(rng.choice([
            [1, 2, 3], [], _records(X, [0]), "dataframe_records", 42, None, True,
            [[1.0, 2.0, 3.0, "red"]],
        ]))

    def wrong_keys():
        return json.dumps(rng.choice([
            {}, {"data": _records(X, [0])}, {"records": _records(X, [0])},
            {"dataframe": _records(X, [0])}, {"columns": cols, "data": [[1, 2, 3, "red"]]},
            {"dataframe_records": _records(X, [0]), "dataframe_split": {"columns": cols,
                                                                        "data": []}},
            {"params": {"a": 1}},
        ]))

    def missing_columns():
        drop = rng.sample(cols, rng.randrange(1, len(cols) + 1))
        recs = [{k: v for k, v in r.items() if k not in drop} for r in _records(X, [0, 1])]
        if rng.random() < 0.5:
            return json.dumps({"dataframe_records": recs})
        keep = [c for c in cols if c not in drop]
        split = {"columns": keep, "data": [[r[c] for c in keep] for r in recs]}
        return json.dumps({"dataframe_split": split})

    def extra_and_missing_columns():
        recs = _records(X, [0, 1])
        gone = rng.choice(cols)  # missing from every record (a gap in one record is a null)
        for r in recs:
            r.pop(gone)
            r[f"extra_{rng.randrange(5)}"] = rng.random()
        return json.dumps({"dataframe_records": recs})

    def wrong_types():
        recs = _records(X, [0, 1, 2])
        r = rng.choice(recs)
        col = rng.choice(["f0", "f1", "f2"])
        r[col] = rng.choice(["abc", "", "1.0.0", [1, 2], {"x": 1}, [], "NaN-ish"])
        if rng.random() < 0.3:
            r["color"] = rng.choice([[1, 2], {"c": "red"}])
        return json.dumps({"dataframe_records": recs})

    def bad_split():
        return json.dumps({"dataframe_split": rng.choice([
            {"columns": cols, "data": [[1.0, 2.0]]},
            {"columns": cols, "data": "not a list"},
            {"columns": "f0", "data": [[1.0]]},
            {"data": [[1.0, 2.0, 3.0, "red"]]},
            [1, 2, 3],
        ])})

    generators += [
        ("invalid_json", invalid_json), ("json_list_or_scalar", json_lists_and_scalars),
        ("wrong_keys", wrong_keys), ("missing_columns", missing_columns),
        ("extra_and_missing_columns", extra_and_missing_columns),
        ("wrong_types", wrong_types), ("bad_dataframe_split", bad_split),
    ]
    content_types = [
        "text/plain", "application/xml", "application/x-www-form-urlencoded",
        "application/json; charset=latin-1", "application/json; format=pandas-split",
        "image/png",
    ]
    n = 0
    while True:
        n += 1
        if n % 40 == 0:  # a large body, in turn: garbage, deep nesting, wrong types
            big = (n // 40) % 3
            if big == 0:
                yield "large_body", "POST", "application/json", b"x" * BIG
            elif big == 1:
                # a JSON document nested ~2 million deep: Python's parser hits its recursion limit
                yield "deeply_nested_json", "POST", "application/json", b"[" * BIG
            else:
                recs = [{"f0": "abc", "f1": 1.0, "f2": 2.0, "color": "red"}] * (BIG // 60)
                yield "large_body", "POST", "application/json", json.dumps(
                    {"dataframe_records": recs})
            continue
        kind = rng.randrange(10)
        if kind == 0:
            yield "wrong_content_type", "POST", rng.choice(content_types), good
        elif kind == 1:
            body = rng.choice([
                "f0,f1\n1,abc\n", "f0,f1,f2,color\n1,2,x,red\n", "", "\x00\x01\x02",
                "f0;f1;f2;color\n1;2;3;red\n",
            ])
            ctype = rng.choice(["text/csv", "application/vnd.apache.parquet"])
            yield "broken_csv_or_parquet", "POST", ctype, body
        elif kind == 2 and rng.random() < 0.3:
            yield "wrong_method", rng.choice(["GET", "PUT", "DELETE"]), "application/json", good
        else:
            category, gen = rng.choice(generators)
            yield category, "POST", "application/json", gen()


def _fuzz(server, X, expected, seed: int, skip: frozenset = frozenset()):
    import requests

    rng = random.Random(seed)
    session = requests.Session()
    session.trust_env = False
    url = f"{server.url}/invocations"
    counts = collections.Counter()
    statuses = collections.Counter()
    problems = []  # (category, status or "dropped", detail)
    malformed = _malformed_cases(X, rng)
    previous = "-"
    while sum(counts.values()) - counts["valid"] < MALFORMED_PER_SERVER:
        for _ in range(VALID_EVERY):
            category, method, ctype, body = next(malformed)
            counts[category] += 1
            if skip and category in skip:
                counts[category] -= 1
                continue
            try:
                resp = session.request(method, url, data=body, headers={"Content-Type": ctype},
                                       timeout=120)
            except requests.ConnectionError as exc:
                problems.append((category, "dropped", f"after {previous}: {exc!r}"))
                continue
            finally:
                previous = category
            statuses[resp.status_code] += 1
            if not 400 <= resp.status_code < 500:
                problems.append((category, resp.status_code, resp.text[:300]))
        rows = rng.sample(range(len(X)), rng.randrange(1, 40))
        payload = json.dumps({"dataframe_split": X.iloc[rows].to_dict(orient="split")})
        counts["valid"] += 1
        try:
            resp = session.post(url, data=payload, headers={"Content-Type": "application/json"},
                                timeout=120)
        except requests.ConnectionError as exc:
            problems.append(("valid", "dropped", f"after {previous}: {exc!r}"))
            continue
        finally:
            previous = "valid"
        statuses[resp.status_code] += 1
        if resp.status_code != 200 or resp.json()["predictions"] != expected[rows].tolist():
            problems.append(("valid", resp.status_code, resp.text[:300]))
    session.close()
    return counts, statuses, problems


# MLflow 3.17.2's own server lets the RecursionError of a JSON document nested thousands deep
# escape its parser: HTTP 500, and uvicorn then closes the keep-alive connection (the server
# itself stays up). mlkit's instrumented server answers 400 and keeps the connection; the plain
# server's fuzz leaves that one category out and test_deeply_nested_json shows both behaviours.
PLAIN_SKIPS = frozenset({"deeply_nested_json"})


@pytest.mark.slow
@pytest.mark.parametrize("which", ["plain", "inst"])
def test_fuzz_never_5xx_never_drops(which, servers, demo):
    server = servers[which]
    pid_before = server.pid
    expected = demo.model.predict(demo.X)
    skip = PLAIN_SKIPS if which == "plain" else frozenset()
    counts, statuses, problems = _fuzz(server, demo.X, expected, seed=7, skip=skip)
    malformed = sum(v for k, v in counts.items() if k != "valid")
    print(f"\nfuzz {which}: {malformed} malformed + {counts['valid']} valid requests; "
          f"by category {dict(sorted((k, v) for k, v in counts.items() if k != 'valid' and v))}; "
          f"statuses {dict(sorted(statuses.items()))}")
    dropped = [p for p in problems if p[1] == "dropped"]
    assert not dropped, "\n".join(map(str, dropped[:10]))
    assert not problems, "\n".join(map(str, problems[:20]))
    assert malformed >= 1000 and counts["valid"] >= 250
    assert counts["large_body"] >= 10
    assert counts["deeply_nested_json"] >= (0 if which == "plain" else 5)
    assert statuses[200] == counts["valid"]
    assert sum(v for k, v in statuses.items() if 400 <= k < 500) == malformed
    assert server.ping() and server.pid == pid_before and server.alive()
    assert server.status()["ready"]


@pytest.mark.parametrize("which", ["plain", "inst"])
def test_deeply_nested_json(which, servers, demo):
    import requests

    server = servers[which]
    session = requests.Session()
    session.trust_env = False
    resp = session.post(f"{server.url}/invocations", data=b"[" * 100_000,
                        headers={"Content-Type": "application/json"}, timeout=60)
    print(f"\n{which}: a JSON document nested 100,000 deep -> HTTP {resp.status_code}")
    if which == "inst":
        assert resp.status_code == 400
        assert "RecursionError" in resp.json()["message"]
        assert resp.json()["request_id"] == resp.headers["x-request-id"]
    else:
        assert resp.status_code in (400, 500)  # MLflow 3.17.2 answers 500 (see PLAIN_SKIPS)
    ok = requests.post(f"{server.url}/invocations", timeout=60,
                       json={"dataframe_split": demo.X.head(2).to_dict(orient="split")})
    assert ok.status_code == 200
    assert server.ping() and server.alive()
    if which == "inst":  # the same keep-alive connection still serves
        again = session.post(f"{server.url}/invocations", timeout=60,
                             json={"dataframe_split": demo.X.head(2).to_dict(orient="split")})
        assert again.status_code == 200
