"""One bad-argument error across the packages (mlkit._args, mlkit.exceptions.ArgumentError).

A bad argument raises an ArgumentError in every package and, still, the class that package has
always raised, with a message naming the argument and the value; in the magics it is a UsageError.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import mlkit
from mlkit import _args
from mlkit.exceptions import (
    ArgumentError,
    ConfigError,
    DataError,
    JobError,
    MlkitError,
    ServeError,
    TrackingError,
    TuneArgumentError,
    TuneError,
)

NOTEBOOKS = Path(__file__).parent / "jobs" / "notebooks"


def _objective(trial):
    return trial.suggest_float("x", 0, 1)


@pytest.mark.parametrize(
    ("call", "package_error", "message"),
    [
        (lambda: mlkit.cluster.up(workers=0), ConfigError,
         "workers must be a positive integer, but got workers=0"),
        (lambda: mlkit.tune.tune(_objective, n_trials=0, progress=False), TuneError,
         "n_trials must be a positive integer, but got n_trials=0"),
        (lambda: mlkit.serve.start("models:/absent@champion", workers=0), ServeError,
         "workers must be a positive integer, but got workers=0"),
        (lambda: mlkit.jobs.sweep(NOTEBOOKS / "simple1.ipynb", grid={"class": [1, 2]}),
         JobError, "parameter name 'class' is a Python keyword"),
        (lambda: mlkit.jobs.run(NOTEBOOKS / "simple1.ipynb", timeout=-1), JobError,
         "timeout must be a positive number of seconds, but got timeout=-1"),
        (lambda: mlkit.data.synthetic("unused", rows=-1), ConfigError,
         "rows must be an integer >= 1, but got rows=-1"),
        (lambda: mlkit.track.serve_tracking(port=70000), TrackingError,
         "port must be an integer in 0..65535, but got port=70000; 0 picks a free one"),
    ],
    ids=["cluster.up", "tune", "serve.start", "jobs.sweep", "jobs.run", "data.synthetic",
         "track.serve_tracking"],
)
def test_a_bad_argument_is_an_argument_error_and_the_packages_own(call, package_error, message,
                                                                 mlkit_home):
    before = mlkit.cluster.current()  # another test's cluster may be running: it must stay
    with pytest.raises(ArgumentError) as caught:
        call()
    assert isinstance(caught.value, package_error)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, MlkitError)
    assert message in str(caught.value)
    assert mlkit.cluster.current() is before, "a bad argument started or changed a cluster"


def test_in_the_magics_a_bad_argument_is_a_usage_error(shell):
    import pandas as pd
    from IPython.core.error import UsageError

    shell.user_ns["frame"] = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(UsageError, match="top must be an integer >= 0, but got top=-1"):
        shell.run_line_magic("mlscale", "data profile frame --top -1")
    with pytest.raises(UsageError, match="parameter name 'class' is a Python keyword"):
        shell.run_line_magic("mlscale", f"run {NOTEBOOKS / 'simple1.ipynb'} --grid class=1,2")
    assert shell.user_ns["frame"].shape == (2, 1)  # the kernel's state is intact


def test_the_checks_state_rule_and_value_and_refuse_booleans_and_nan():
    assert _args.positive_int("n", np.int64(3)) == 3
    assert isinstance(_args.positive_int("n", np.int64(3)), int)
    with pytest.raises(ArgumentError, match=r"^n must be a positive integer, but got n=True$"):
        _args.positive_int("n", True)
    with pytest.raises(ArgumentError, match=r"but got n=2\.5"):
        _args.positive_int("n", 2.5)
    with pytest.raises(ArgumentError, match="timeout must be a positive number of seconds"):
        _args.positive_number("timeout", float("nan"), unit="seconds")
    with pytest.raises(ArgumentError, match="timeout=inf"):
        _args.positive_number("timeout", float("inf"), finite=True)
    assert _args.positive_number("timeout", float("inf")) == float("inf")
    assert _args.non_negative_number("wait", 0) == 0.0
    with pytest.raises(ArgumentError, match=r"an integer in 1\.\.64, but got replicas=65; "
                                            "or None: one per worker"):
        _args.int_in("replicas", 65, 1, 64, what_to_do="or None: one per worker")
    with pytest.raises(ArgumentError, match=r"one of \['a', 'b'\], but got mode=\['a'\]"):
        _args.one_of("mode", ["a"], {"a": 1, "b": 2})
    assert _args.one_of("mode", "b", ("a", "b")) == "b"


def test_each_package_class_is_both_and_travels_between_processes():
    # a check may fail inside a Dask task: the error must pickle and keep its classes
    err = _args.fail("n_trials", 0, "a positive integer", error=TuneArgumentError)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is TuneArgumentError and str(back) == str(err)
    import mlkit.exceptions as exc

    both = [getattr(exc, n) for n in exc.__all__ if n.endswith("ArgumentError") and
            n != "ArgumentError"]
    assert len(both) == 6
    for cls in both:
        package = getattr(exc, cls.__name__.replace("Argument", ""))
        assert issubclass(cls, ArgumentError) and issubclass(cls, package), cls
    assert issubclass(exc.DataArgumentError, DataError)
