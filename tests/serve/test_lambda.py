"""``mlkit serve lambda``: the AWS Lambda build context, its handler invoked in-process.

No AWS account, Docker engine or Lambda runtime emulator exists here. What is exercised: the
context is written from a registered model (alias resolved and pinned), its handler module is
imported in a fresh subprocess from the context alone (the copied mlkit, no tracking store) and
called with API Gateway REST (v1), HTTP API (v2) and Function URL events as Lambda would call
it; the answers are compared with the local scoring servers' answers to the same requests. The
context's requirements are installed into a scratch venv (uv) and the handler is imported and
invoked there too. Not exercised: ``docker build``, the awslambdaric / AWS base image runtime
loop, a real Lambda.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MAX_BODY = 4096  # small, so that the oversize case stays small

# Runs in the subprocess: import the generated handler, answer each event, print the results.
_INVOKE = r"""
import asyncio, json, sys, types
events = json.load(sys.stdin)
import lambda_handler, mlkit
out = {"mlkit_file": mlkit.__file__, "answers": []}

async def in_a_loop(ev, ctx):  # as a notebook cell calls it: an event loop is running
    return lambda_handler.handler(ev, ctx)

for ev in events:
    ctx = types.SimpleNamespace(aws_request_id=ev.pop("_rid"), function_name="demo",
                                get_remaining_time_in_millis=lambda: 30000)
    if ev.pop("_in_loop", False):
        out["answers"].append(asyncio.run(in_a_loop(ev, ctx)))
    else:
        out["answers"].append(lambda_handler.handler(ev, ctx))
print("MLKIT-RESULT " + json.dumps(out))
"""


# -- events, shaped as AWS documents them ---------------------------------------------------
def _headers(ctype):
    return {"Host": "example.test", "User-Agent": "pytest",
            **({"Content-Type": ctype} if ctype is not None else {})}


def rest_v1(method, path, body, ctype, b64=False):
    headers = _headers(ctype)
    return {
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.strip("/")}, "stageVariables": None,
        "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method, "stage": "prod",
                           "path": f"/prod{path}", "requestId": "req-v1",
                           "identity": {"sourceIp": "192.0.2.10"}},
        "body": body, "isBase64Encoded": b64,
    }


def http_v2(method, path, body, ctype, b64=False, domain="abc123.execute-api.us-east-1"
            ".amazonaws.com"):
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {k.lower(): v for k, v in _headers(ctype).items()},
        "requestContext": {"accountId": "123456789012", "apiId": "abc123", "domainName": domain,
                           "domainPrefix": domain.split(".")[0], "requestId": "req-v2",
                           "routeKey": "$default", "stage": "$default",
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "192.0.2.10", "userAgent": "pytest"}},
        "body": body, "isBase64Encoded": b64,
    }


def function_url(method, path, body, ctype, b64=False):
    # a Function URL sends the v2 payload format; the function's URL is its root
    return http_v2(method, path, body, ctype, b64,
                   domain="abcdefghijklmnop.lambda-url.us-east-1.on.aws")


EVENTS = {"rest_v1": rest_v1, "http_v2": http_v2, "function_url": function_url}
PATHS = {"rest_v1": "/invocations", "http_v2": "/prod/invocations", "function_url": "/"}


def _split(df):
    return json.dumps({"dataframe_split": df.to_dict(orient="split")})


def _cases(demo):
    X = demo.X.head(5)
    oversize = json.dumps({"dataframe_records": demo.X.head(80).to_dict(orient="records")})
    assert len(oversize) > MAX_BODY
    wrong = X.rename(columns={"f2": "f9"})
    # name: (body, content type, base64?, expected status or "local" = as the local server)
    return {
        "valid split": (_split(X), "application/json", False, 200),
        "valid records": (json.dumps({"dataframe_records": X.to_dict(orient="records")}),
                          "application/json", False, 200),
        "valid base64 body": (_split(X), "application/json", True, 200),
        "malformed JSON": ('{"dataframe_split": {', "application/json", False, "local"),
        "wrong columns": (_split(wrong), "application/json", False, "local"),
        "wrong type": (json.dumps({"dataframe_records": [{"f0": "abc", "f1": 2.0, "f2": 1.0,
                                                          "color": "red"}]}),
                       "application/json", False, "local"),
        "empty body with Content-Type": ("", "application/json", False, "local"),
        "empty body without Content-Type": ("", None, False, 415),
        "body without Content-Type": (_split(X), None, False, 415),
        "oversize": (oversize, "application/json", False, 413),
        "bad base64": ("not base64!!", "application/json", True, 400),
    }


def _event(kind, case, body, ctype, b64, path=None, method="POST"):
    if b64:
        body = body if case == "bad base64" else base64.b64encode(body.encode()).decode()
    ev = EVENTS[kind](method, path or PATHS[kind], body, ctype, b64)
    ev["_rid"] = f"lambda-{kind}-{case.replace(' ', '-')}"
    return ev


def _invoke(python, ctx_dir, events, home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "MLKIT_", "PYTHON"))}
    env.update(PYTHONPATH=str(ctx_dir), HOME=str(home))  # no tracking store, as in Lambda
    proc = subprocess.run([str(python), "-c", _INVOKE], input=json.dumps(events), text=True,
                          capture_output=True, cwd=ctx_dir, env=env, timeout=600, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MLKIT-RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("MLKIT-RESULT "):])


def _body(answer):
    body = answer.get("body", "")
    return base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()


def _local(server, body, ctype):
    import requests

    resp = requests.post(f"{server.url}/invocations", data=body.encode(), timeout=60,
                         headers={"Content-Type": ctype} if ctype else {})
    return resp.status_code, resp.content


@pytest.fixture(scope="module")
def context(demo, helpers, tmp_path_factory):
    """The build context of ``models:/demo@champion``, written as a user would."""
    import mlkit

    out = tmp_path_factory.mktemp("lambda") / "ctx"
    with helpers.home_env(demo.home):
        mlkit.serve.lambda_package(demo.alias_uri, out, max_body_bytes=MAX_BODY)
    return out


@pytest.fixture(scope="module")
def answers(context, demo, tmp_path_factory):
    """Every case in every event type, answered by the handler in one fresh subprocess."""
    cases = _cases(demo)
    events, keys = [], []
    for kind in EVENTS:
        for case, (body, ctype, b64, _) in cases.items():
            events.append(_event(kind, case, body, ctype, b64))
            keys.append((kind, case))
        events.append(_event(kind, "ping", "", None, False, path="/ping", method="GET"))
        keys.append((kind, "ping"))
    events.append({"_rid": "not-http", "detail-type": "Scheduled Event", "source": "aws.events"})
    keys.append(("other", "not an HTTP event"))
    events.append({"_rid": "truncated", "version": "2.0", "requestContext": {}})
    keys.append(("other", "truncated v2 event"))
    body, ctype, _, _ = cases["valid split"]
    events.append({**_event("function_url", "valid split", body, ctype, False), "_in_loop": True})
    keys.append(("function_url", "valid split, called from a running event loop"))
    got = _invoke(sys.executable, context, events, tmp_path_factory.mktemp("lambda-home"))
    assert Path(got["mlkit_file"]).is_relative_to(context)  # the copy in the context ran
    return dict(zip(keys, got["answers"], strict=True))


def test_context_layout(context, demo):
    import mlflow
    from mlflow.models import Model

    manifest = json.loads((context / "mlkit-lambda.json").read_text())
    assert manifest["model"] == demo.alias_uri
    assert manifest["pinned"] == demo.version_uri and manifest["version"] == demo.version
    assert manifest["max_body_bytes"] == MAX_BODY and manifest["mlflow"] == mlflow.__version__
    dockerfile = (context / "Dockerfile").read_text()
    py = manifest["python"]
    assert f"FROM python:{py}-slim" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "awslambdaric"]' in dockerfile
    assert 'CMD ["lambda_handler.handler"]' in dockerfile
    assert Model.load(str(context / "model" / "MLmodel")).signature == Model.load(
        f"{demo.local_path}/MLmodel").signature
    reqs = (context / "requirements.txt").read_text().splitlines()
    assert "-r model/requirements.txt" in reqs and any(r.startswith("mangum==") for r in reqs)
    assert any(r.startswith("awslambdaric") for r in reqs)
    assert "scikit-learn" in (context / "model" / "requirements.txt").read_text()
    assert (context / "mlkit" / "serve" / "_lambda_app.py").is_file()
    assert not list(context.rglob("__pycache__"))
    assert not [p.name for p in context.parent.iterdir() if p.name.startswith(".")]


def test_aws_base_image(demo, at_serve_home, tmp_path):
    import mlkit

    out = mlkit.serve.lambda_package(demo.version_uri, tmp_path / "aws", base="aws",
                                     python="3.12")
    dockerfile = (out / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12" in dockerfile
    reqs = [r for r in (out / "requirements.txt").read_text().splitlines()
            if not r.startswith("#")]
    assert "awslambdaric" not in dockerfile  # AWS's image has the runtime client built in
    assert not [r for r in reqs if r.startswith("awslambdaric")]
    assert 'CMD ["lambda_handler.handler"]' in dockerfile


@pytest.mark.parametrize("kind", list(EVENTS))
def test_valid_requests_answered_as_the_local_server(kind, answers, servers, demo):
    for case, (body, ctype, _b64, status) in _cases(demo).items():
        if status != 200:
            continue
        answer = answers[(kind, case)]
        assert answer["statusCode"] == 200, (case, answer)
        for which in ("plain", "inst"):
            assert _local(servers[which], body, ctype) == (200, _body(answer)), (case, which)
        assert json.loads(_body(answer))["predictions"] == demo.model.predict(
            demo.X.head(5)).tolist()
    assert answers[(kind, "ping")]["statusCode"] == 200


@pytest.mark.parametrize("kind", list(EVENTS))
def test_bad_requests_get_4xx_never_5xx(kind, answers, servers, demo):
    for case, (body, ctype, _b64, status) in _cases(demo).items():
        if status == 200:
            continue
        answer = answers[(kind, case)]
        assert 400 <= answer["statusCode"] < 500, (case, answer)
        payload = json.loads(_body(answer))
        # Lambda's request id, so the answer can be matched to its CloudWatch log line
        assert payload["request_id"] == f"lambda-{kind}-{case.replace(' ', '-')}", payload
        if status == "local":  # the same status and message as mlkit's local server
            code, local = _local(servers["inst"], body, ctype)
            local = json.loads(local)
            assert answer["statusCode"] == code, (case, answer, local)
            assert payload["message"] == local["message"], case
        else:
            assert answer["statusCode"] == status, (case, answer)
    assert "limited to 4096 bytes" in json.loads(_body(answers[(kind, "oversize")]))["message"]


def test_an_event_that_is_not_http_gets_400(answers):
    for case in ("not an HTTP event", "truncated v2 event"):
        answer = answers[("other", case)]
        assert answer["statusCode"] == 400 and "not an HTTP event" in answer["body"], answer


def test_the_handler_works_under_a_running_event_loop(answers, demo):
    answer = answers[("function_url", "valid split, called from a running event loop")]
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["predictions"] == demo.model.predict(
        demo.X.head(5)).tolist()


def test_requirements_install_into_a_scratch_venv(context, demo, tmp_path):
    """uv installs the context's requirements.txt into a fresh venv; the handler runs there.

    Needs PyPI (or uv's cache) for what the lock does not hold (awslambdaric and its two
    dependencies); about 10 s with a warm uv cache.
    """
    uv = Path(sys.executable).with_name("uv")
    venv = tmp_path / "venv"
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   timeout=300)
    cmd = [str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
           "-r", "requirements.txt"]
    if Path("/opt/wheels").is_dir():  # the Makefile's FIND_LINKS
        cmd[3:3] = ["--find-links", "/opt/wheels"]
    proc = subprocess.run(cmd, cwd=context, capture_output=True, text=True, timeout=900,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import awslambdaric, mangum"],
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stderr
    X = demo.X.head(5)
    events = [_event("function_url", "valid split", _split(X), "application/json", False),
              _event("rest_v1", "malformed JSON", "{", "application/json", False)]
    got = _invoke(venv / "bin" / "python", context, events, tmp_path)
    assert Path(got["mlkit_file"]).is_relative_to(context)
    ok, bad = got["answers"]
    assert ok["statusCode"] == 200
    assert json.loads(ok["body"])["predictions"] == demo.model.predict(X).tolist()
    assert bad["statusCode"] == 400


def test_cli_and_refusals(demo, at_serve_home, tmp_path):
    from click.testing import CliRunner

    from mlkit.cli import cli

    run = CliRunner().invoke
    result = run(cli, ["serve", "lambda", demo.version_uri, str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "lambda_handler.py").is_file() and "docker build" in result.output
    before = sorted(p.name for p in (tmp_path / "a").iterdir())
    refusals = [
        (["serve", "lambda", demo.version_uri, str(tmp_path / "a")],
         "already exists and is not empty"),
        (["serve", "lambda", "models:/nope@x", str(tmp_path / "b")], "not found in the registry"),
        (["serve", "lambda", "models:/demo@nope", str(tmp_path / "b")], "aliases are"),
        (["serve", "lambda", str(tmp_path / "no-model"), str(tmp_path / "b")], "does not exist"),
        (["serve", "lambda", demo.version_uri, str(tmp_path / "b"), "--max-body-bytes", "10"],
         "max_body_bytes must be an integer from 1024"),
        (["serve", "lambda", demo.version_uri, str(tmp_path / "b"), "--python", "2.7"],
         "Invalid value for '--python'"),
    ]
    for args, message in refusals:
        result = run(cli, args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # nothing else written


def test_python_api_refusals(demo, at_serve_home, tmp_path):
    import mlkit

    for kwargs, message in [({"base": "alpine"}, "base must be one of"),
                            ({"python": "3.9"}, "python must be one of"),
                            ({"max_body_bytes": 7_000_000}, "Lambda's own request limit")]:
        with pytest.raises(mlkit.exceptions.ServeError, match=message):
            mlkit.serve.lambda_package(demo.version_uri, tmp_path / "x", **kwargs)
    assert not list(tmp_path.iterdir())
