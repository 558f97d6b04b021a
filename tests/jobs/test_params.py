"""Parameter safety and parsing, checked before any kernel starts (no kernel in this module)."""

from __future__ import annotations

import json
import math

import pytest

import mlkit
from mlkit.exceptions import JobError
from mlkit.jobs import _params as P


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("class", "Python keyword"),
        ("lambda", "Python keyword"),
        ("1st", "not a Python identifier"),
        ("x; import os", "not a Python identifier"),
        ("a-b", "not a Python identifier"),
        ("", "not a Python identifier"),
    ],
)
def test_bad_names_are_refused_with_the_rule(name, fragment):
    with pytest.raises(JobError, match=fragment) as info:
        P.validate_parameters({name: 1})
    assert repr(name) in str(info.value)


def test_names_must_be_strings():
    with pytest.raises(JobError, match="must be strings"):
        P.validate_parameters({1: "x"})


def test_good_names_and_json_values_pass_unchanged():
    values = {"lr": 0.1, "_private": None, "layers": (64, 32), "cfg": {"a": [True, "é"]}}
    assert P.validate_parameters(values) == {
        "lr": 0.1, "_private": None, "layers": [64, 32], "cfg": {"a": [True, "é"]},
    }


@pytest.mark.parametrize(
    "value, fragment",
    [
        ({1: "x"}, "dict keys must be strings"),
        ({1, 2}, "type set"),
        (b"bytes", "type bytes"),
        ([object()], "type object"),
    ],
)
def test_values_that_cannot_round_trip_are_refused(value, fragment):
    with pytest.raises(JobError, match=fragment):
        P.validate_parameters({"p": value})


def test_unknown_name_lists_the_declared_ones():
    with pytest.raises(JobError) as info:
        P.validate_parameters({"learning_rat": 0.1}, declared=["learning_rate", "epochs"])
    msg = str(info.value)
    assert "'learning_rat'" in msg and "epochs, learning_rate" in msg


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", 3), ("-7", -7), ("0.5", 0.5), ("1e-3", 0.001), ("True", True), ("False", False),
        ("None", None), ("true", "true"), ("abc", "abc"), ("[1, 2]", "[1, 2]"), ("", ""),
    ],
)
def test_p_values_follow_papermills_rules(text, expected):
    value = P.parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_p_nan_is_a_float():
    assert math.isnan(P.parse_value("nan"))


def test_yaml_sources_keep_dates_as_text_and_merge_in_papermill_order(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("lr: 0.5\nday: 2024-01-31\nlayers: [64, 32]\nname: from-file\n")
    merged = P.collect_parameters([str(f)], ["name: from-yaml\nextra: {a: 1}"], [("lr", "0.1")])
    assert merged == {
        "lr": 0.1, "day": "2024-01-31", "layers": [64, 32], "name": "from-yaml", "extra": {"a": 1},
    }


def test_params_file_errors_name_the_file(tmp_path):
    with pytest.raises(JobError, match="does not exist"):
        P.load_params_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1, 2\n")
    with pytest.raises(JobError, match="not valid YAML"):
        P.load_params_file(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(JobError, match="must hold a mapping"):
        P.load_params_file(listy)


def test_grid_parsing_and_cartesian_product():
    grid = P.parse_grid(["lr=0.1,0.01", "depth=4,6", "opt=adam"])
    assert grid == {"lr": [0.1, 0.01], "depth": [4, 6], "opt": ["adam"]}
    points = P.expand_grid(grid)
    assert len(points) == 4
    assert points[0] == {"lr": 0.1, "depth": 4, "opt": "adam"}
    assert points[-1] == {"lr": 0.01, "depth": 6, "opt": "adam"}


@pytest.mark.parametrize(
    "items, fragment",
    [(["lr"], "NAME=V1,V2"), (["lr="], "NAME=V1,V2"), (["for=1,2"], "keyword"),
     (["lr=1", "lr=2"], "twice")],
)
def test_bad_grid_options(items, fragment):
    with pytest.raises(JobError, match=fragment):
        P.parse_grid(items)


def test_grid_values_must_be_lists():
    with pytest.raises(JobError, match="must be a list"):
        P.expand_grid({"lr": 0.1})
    with pytest.raises(JobError, match="no values"):
        P.expand_grid({"lr": []})


def test_record_outside_a_job_keeps_values_in_memory_and_converts_numpy():
    import numpy as np

    mlkit.jobs.record(acc=np.float64(0.5), n=np.int64(3), arr=np.arange(3), tag="x")
    got = mlkit.jobs.recorded()
    assert got["acc"] == 0.5 and got["n"] == 3 and got["arr"] == [0, 1, 2] and got["tag"] == "x"
    assert type(got["n"]) is int


def test_record_writes_the_job_file_atomically_and_merges(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    monkeypatch.setenv("MLKIT_JOB_RECORD", str(path))
    mlkit.jobs.record(a=1, b={"x": [1, None]})
    mlkit.jobs.record(a=2, c="é")
    assert json.loads(path.read_text()) == {"a": 2, "b": {"x": [1, None]}, "c": "é"}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]  # no temp file left


def test_record_refuses_what_it_cannot_carry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLKIT_JOB_RECORD", str(tmp_path / "record.json"))
    with pytest.raises(JobError, match="not JSON-serialisable"):
        mlkit.jobs.record(model=object())
    with pytest.raises(JobError, match="not usable as an MLflow key"):
        mlkit.jobs.record(**{"a:b": 1})
    assert not (tmp_path / "record.json").exists()


def test_jobs_package_and_cli_module_stay_light():
    import subprocess
    import sys

    code = (
        "import sys, mlkit, mlkit.jobs, mlkit.jobs.cli\n"
        "mlkit.jobs.record(a=1)\n"
        "heavy = ['papermill', 'mlflow', 'pandas', 'dask', 'distributed', 'nbclient']\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
