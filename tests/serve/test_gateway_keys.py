"""API keys at the gateway, over real HTTP: the ``mlkit serve keys`` CLI, 401 / 403 / 429, keys in
the URL refused, revocation seen by a running gateway, nothing but hashes on disk."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner

from tests._wait import wait_for

pytestmark = pytest.mark.timeout(900)  # the fixture starts a gateway (a minute when busy)


def _cli(*args):
    from mlkit.cli import cli

    return CliRunner().invoke(cli, ["serve", "keys", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def secured(demo, helpers):
    import mlkit

    with helpers.home_env(demo.home):
        srv = mlkit.serve.start(demo.version_uri, replicas=1, name="gw-keys", api_keys=True,
                                timeout=600)
        yield srv
        srv.stop()


def _post(url, key=None, header="Authorization", scheme="Bearer", X=None):
    import requests

    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[header] = f"{scheme} {key}".strip() if scheme else key
    body = json.dumps({"dataframe_split": X.head(2).to_dict(orient="split")})
    return requests.post(f"{url}/invocations", data=body, headers=headers, timeout=60)


def test_keys_cli_and_every_refusal(secured, demo, helpers):
    import requests

    with helpers.home_env(demo.home):
        made = _cli("create", "alice")
        assert made.exit_code == 0, made.output
        key = made.stdout.strip().splitlines()[0]
        assert key.startswith("mlk_")
        listing = _cli("list")
        assert "alice" in listing.output and key not in listing.output
        from mlkit.serve._keys import keys_path

        path = keys_path()
        assert key not in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    url, X = secured.url, demo.X
    expected = demo.model.predict(X.head(2)).tolist()
    ok = wait_for(lambda: _post(url, key, X=X).status_code == 200, what="the new key accepted")
    assert ok
    assert _post(url, key, X=X).json()["predictions"] == expected
    assert _post(url, key, header="X-API-Key", scheme="", X=X).status_code == 200
    # header names are case-insensitive in HTTP, and so is the Bearer scheme
    assert _post(url, key, header="AUTHORIZATION", scheme="bearer", X=X).status_code == 200

    refusals = {
        "no key": _post(url, None, X=X),
        "wrong key": _post(url, "mlk_00000000_" + "x" * 43, X=X),
        "garbage": _post(url, "hunter2", X=X),
        "key in upper case": _post(url, key.upper(), X=X),
        "scheme without key": _post(url, "", X=X),
        "Basic scheme": _post(url, key, scheme="Basic", X=X),
    }
    for what, resp in refusals.items():
        assert resp.status_code == 401, (what, resp.status_code, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer"), what
    in_url = requests.post(f"{url}/invocations?api_key={key}", timeout=60,
                           headers={"Authorization": f"Bearer {key}"},
                           json={"dataframe_split": X.head(2).to_dict(orient="split")})
    assert in_url.status_code == 401 and "URL" in in_url.json()["message"]
    # liveness is open; metrics and the route listing are not
    base = secured.gateway_url
    assert requests.get(f"{base}/health", timeout=10).status_code == 200
    assert requests.get(f"{url}/ping", timeout=10).status_code == 200
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
    assert requests.get(f"{base}/metrics", timeout=10,
                        headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert secured.status()["replicas"][0]["healthy"]  # the handle uses its admin token

    with helpers.home_env(demo.home):
        revoked = _cli("revoke", "alice")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    # a Response is falsy for 4xx: wait on the status code, then look at the answer
    wait_for(lambda: _post(url, key, X=X).status_code == 403, what="the revoked key refused")
    assert "revoked" in _post(url, key, X=X).json()["message"]
    with helpers.home_env(demo.home):
        again = _cli("revoke", "alice")
    assert again.exit_code != 0 and "no active API key named 'alice'" in again.output


def test_rate_limit_answers_429_with_retry_after(secured, demo, helpers):
    with helpers.home_env(demo.home):
        made = _cli("create", "bob", "--rate-limit", "3/minute")
        bad = _cli("create", "carol", "--rate-limit", "lots")
    assert bad.exit_code != 0 and "rate limit must look like" in bad.output
    key = made.stdout.strip().splitlines()[0]
    url = secured.url
    wait_for(lambda: _post(url, key, X=demo.X).status_code in (200, 429), what="key accepted")
    statuses = [_post(url, key, X=demo.X) for _ in range(4)]
    codes = [r.status_code for r in statuses]
    assert codes.count(429) >= 2 and set(codes) <= {200, 429}, codes
    limited = next(r for r in statuses if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert "rate limit" in limited.json()["message"]
    # another key is not limited by bob's traffic
    with helpers.home_env(demo.home):
        other = _cli("create", "dave").stdout.strip().splitlines()[0]
    assert wait_for(lambda: _post(url, other, X=demo.X).status_code == 200, what="dave served")


def test_keys_are_required_off_loopback():
    from mlkit.serve._deploy import check_gateway_args

    assert check_gateway_args(1, 64, 5, 2048, None, "192.0.2.10") is True
    assert check_gateway_args(1, 64, 5, 2048, None, "127.0.0.1") is False
    assert check_gateway_args(1, 64, 5, 2048, True, "127.0.0.1") is True


def test_real_prometheus_scrapes_the_keyed_gateway(secured, demo, helpers, tmp_path):
    """`mlkit serve observability` config, Debian's real Prometheus, the request rate read back
    through Prometheus' HTTP API."""
    import shutil
    import socket
    import subprocess

    import requests

    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("Debian's `prometheus` is not installed: `make system-deps` (as root) or "
                    "`apt-get install -y prometheus`")
    with helpers.home_env(demo.home):
        key = _cli("create", "prometheus").stdout.strip().splitlines()[0]
        from mlkit.cli import cli

        target = secured.gateway_url.removeprefix("http://")
        res = CliRunner().invoke(cli, ["serve", "observability", str(tmp_path / "obs"),
                                       "--keyed-gateway", target])
    assert res.exit_code == 0, res.output
    cfg = (tmp_path / "obs" / "prometheus.yml").read_text()
    assert "mlkit-gateway-keyed" in cfg and target in cfg
    (tmp_path / "obs" / "gateway.key").write_text(key)
    dash = json.loads((tmp_path / "obs" / "grafana-dashboard.json").read_text())
    assert any("mlkit_gateway_requests_total" in t["expr"] for p in dash["panels"]
               for t in p["targets"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'obs' / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=open(tmp_path / "prometheus.log", "wb"), stderr=subprocess.STDOUT)
    try:
        # the gateway re-reads the key file at most once a second
        wait_for(lambda: _post(secured.url, key, X=demo.X).status_code == 200,
                 what="the new key accepted")
        for _ in range(19):
            assert _post(secured.url, key, X=demo.X).status_code == 200

        def query(expr):
            r = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr},
                             timeout=10).json()
            return r["data"]["result"]

        total = wait_for(lambda: (res := query('sum(mlkit_gateway_requests_total{model="demo",'
                                               'status="200"})')) and
                         float(res[0]["value"][1]) >= 20 and res,
                         what="Prometheus to scrape 20 answered requests")
        up = query('up{job="mlkit-gateway-keyed"}')
        assert up and up[0]["value"][1] == "1"
        for _ in range(20):
            _post(secured.url, key, X=demo.X)
        rate = wait_for(lambda: (res := query('sum(rate(mlkit_gateway_requests_total'
                                              '{model="demo"}[1m]))')) and
                        float(res[0]["value"][1]) > 0 and res, what="a request rate")
        print(f"\nPrometheus: {float(total[0]['value'][1]):g} requests scraped, rate "
              f"{float(rate[0]['value'][1]):.3f}/s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
