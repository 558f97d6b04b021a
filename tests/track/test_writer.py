"""mlkit.track._writer: the one MLflow writer, against a real SQLite MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests._wait import wait_for


@pytest.fixture
def store():
    """MLflow's client on mlkit's default store (SQLite in the test's home) and an experiment."""
    import mlflow

    from mlkit import track

    uri = track.configure("writer-tests")
    client = mlflow.MlflowClient(uri)
    return client, client.get_experiment_by_name("writer-tests").experiment_id


def test_limits_are_mlflows_own():
    import mlflow.utils.validation as v

    from mlkit.track._writer import limits

    lim = limits()
    assert lim.tag_value == v.MAX_TAG_VAL_LENGTH == 8000
    assert lim.param_value == v.MAX_PARAM_VAL_LENGTH
    assert lim.key == v.MAX_ENTITY_KEY_LENGTH
    assert lim.metrics_per_batch == v.MAX_METRICS_PER_BATCH
    assert lim.params_tags_per_batch == v.MAX_PARAMS_TAGS_PER_BATCH
    assert lim.entities_per_batch == v.MAX_ENTITIES_PER_BATCH


def test_no_package_redefines_mlflows_limits():
    """The limits live in MLflow; no mlkit module keeps its own copy of one."""
    from pathlib import Path

    import mlkit

    root = Path(mlkit.__file__).parent
    offenders = [
        f"{p.relative_to(root)}:{n}"
        for p in root.rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if any(x in line for x in ("= 6000", "= 5000", "= 8000", "Metric(", "RunTag(", "Param("))
        and p.name != "_writer.py"
    ]
    assert offenders == []


def test_values_over_the_limits_are_cut_with_a_mark_and_stored(store):
    from mlkit.track._writer import TRUNCATED, RunWriter, limits

    client, exp = store
    lim = limits()
    long_error = "E" * 20_000
    with RunWriter.create(exp, client=client, run_name="long") as w:
        w.tag("mlkit.job.error", long_error)
        w.param("grid", list(range(5000)))
        w.metric("bad key [0]", 1.5)
        w.param("k" * 400, 1)
    run = client.get_run(w.run_id)
    tag = run.data.tags["mlkit.job.error"]
    assert len(tag) == lim.tag_value and tag.endswith(TRUNCATED) and tag.startswith("EEEE")
    param = run.data.params["grid"]
    assert len(param) == lim.param_value and param.startswith("[0, 1, 2") and param.endswith("...")
    assert run.data.metrics["bad key _0_"] == 1.5
    (long_key,) = [k for k in run.data.params if k.startswith("kkk")]
    assert len(long_key) == lim.key
    assert run.info.status == "FINISHED"


def test_batches_are_split_to_mlflows_limits(store):
    from mlkit.track._writer import RunWriter, limits

    client, exp = store
    n_metrics = limits().metrics_per_batch * 2 + 17
    n_params = limits().params_tags_per_batch * 2 + 3
    with RunWriter.create(exp, client=client) as w:
        for step in range(n_metrics):
            w.metric("loss", 1.0 / (step + 1), step=step)
        w.params({f"p{i}": i for i in range(n_params)})
        w.tags({f"t{i}": i for i in range(n_params)})
        assert w.pending == n_metrics + 2 * n_params
        w.flush()
        assert w.pending == 0
    history = client.get_metric_history(w.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(n_metrics))
    run = client.get_run(w.run_id)
    assert len(run.data.params) == n_params
    assert {f"t{i}" for i in range(n_params)} <= set(run.data.tags)


def test_asynchronous_metrics_are_all_in_the_store_when_the_run_ends(store):
    from mlkit.track._writer import RunWriter

    client, exp = store
    with RunWriter.create(exp, client=client, asynchronous=True) as w:
        for step in range(50):
            w.metrics({"a": step, "b": -step}, step=step)
            if step % 10 == 0:
                w.flush()  # handed to MLflow's async queue; the caller does not wait
        w.tag("done", "yes")  # tags are written synchronously, in order
    assert client.get_run(w.run_id).info.status == "FINISHED"
    assert len(client.get_metric_history(w.run_id, "a")) == 50
    assert len(client.get_metric_history(w.run_id, "b")) == 50


def test_a_tag_written_twice_keeps_its_last_value(store):
    from mlkit.track._writer import RunWriter

    client, exp = store
    with RunWriter.create(exp, client=client, tags={"status": "running"}) as w:
        w.tag("status", "a")
        w.tag("status", "b")
    assert client.get_run(w.run_id).data.tags["status"] == "b"


def test_a_failed_write_ends_the_run_failed_not_running(store):
    """MLflow refuses to change a logged param: the final write fails, the run ends FAILED."""
    from mlflow.exceptions import MlflowException

    from mlkit.track._writer import RunWriter

    client, exp = store
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        with RunWriter.create(exp, client=client) as w:
            w.param("lr", 0.1)
            w.flush()
            w.param("lr", 0.2)
    run = client.get_run(w.run_id)
    assert run.info.status == "FAILED"
    assert run.data.params["lr"] == "0.1"


def test_an_exception_in_the_block_ends_failed_and_keeps_what_was_queued(store):
    from mlkit.track._writer import RunWriter

    client, exp = store
    with pytest.raises(RuntimeError, match="crashed"):
        with RunWriter.create(exp, client=client) as w:
            w.metric("seen", 1.0)
            raise RuntimeError("the block crashed")
    run = client.get_run(w.run_id)
    assert run.info.status == "FAILED"
    assert run.data.metrics["seen"] == 1.0


def test_set_status_and_end_time(store):
    from mlkit.track._writer import RunWriter

    client, exp = store
    with RunWriter.create(exp, client=client, start_time=1_000) as w:
        w.set_status("KILLED", end_time=2_000)
    info = client.get_run(w.run_id).info
    assert (info.status, info.start_time, info.end_time) == ("KILLED", 1_000, 2_000)


def test_ctrl_c_in_the_middle_of_writing_ends_the_run_killed(store, mlkit_home, tmp_path):
    """A real SIGINT to a process that keeps writing batches: its run ends KILLED, not RUNNING."""
    client, exp = store
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import faulthandler, signal
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks where it hangs
        import mlflow
        from mlkit import track
        from mlkit.track._writer import RunWriter

        client = mlflow.MlflowClient(track.configure("writer-tests"))
        with RunWriter.create({exp!r}, client=client, run_name="endless") as w:
            print(w.run_id, flush=True)
            step = 0
            while True:
                w.metrics({{"m": step}}, step=step)
                w.params({{f"p{{step}}": step}})
                w.flush()
                step += 1
    """))
    # stderr to a file: a pipe nobody reads while the process runs could fill and block it.
    err = open(tmp_path / "writer.err", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=err, text=True,
        env={**os.environ},
    )
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id, (tmp_path / "writer.err").read_text()
        wait_for(
            lambda: len(client.get_metric_history(run_id, "m")) >= 5,
            timeout=60, what="the writer process to store a few batches",
        )
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # every thread's stack into writer.err
            # "Current thread 0x..." when only the main thread runs, "Thread 0x..." for others
            wait_for(lambda: "most recent call first" in (tmp_path / "writer.err").read_text(),
                     timeout=30,
                     what="the hung writer's stacks")
            pytest.fail("the writer did not exit within 120 s of SIGINT; its stacks:\n"
                        + (tmp_path / "writer.err").read_text()[-6000:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
    stderr = (tmp_path / "writer.err").read_text()
    assert proc.returncode != 0, stderr[-2000:]
    assert "KeyboardInterrupt" in stderr, stderr[-2000:]
    assert client.get_run(run_id).info.status == "KILLED"


# -- finished runs, many at once -------------------------------------------------------------------
def _finished_example():
    from mlkit.track._writer import FinishedRun

    return FinishedRun(
        "trial-7",
        status="FAILED",
        start_time=1_700_000_000_000,
        end_time=1_700_000_002_500,
        tags={"mlkit.kind": "trial", "bad key[0]": "x", "long": "t" * 9000},
        params={"lr": 0.1, "layers": [64, 32]},
        metrics=[("value", 0.25, 0), ("loss", 3.0, 1), ("loss", 2.0, 2), ("loss", 2.5, 3),
                 ("nan", float("nan"), 0), ("inf", float("inf"), 0)],
    )


def _same_as_mlflows_own(client, exp, run_id):
    """The run at ``run_id`` equals the one MLflow's public API writes for the same content."""
    from mlflow.entities import Metric, Param

    from mlkit.track._writer import _prepared

    r = _prepared(_finished_example())
    ref = client.create_run(exp, start_time=r.start_time, tags=r.tags, run_name=r.run_name)
    client.log_batch(
        ref.info.run_id,
        metrics=[Metric(k, v, r.end_time, s) for k, v, s in r.metrics],
        params=[Param(k, v) for k, v in r.params.items()],
    )
    client.set_terminated(ref.info.run_id, r.status, end_time=r.end_time)
    got, want = client.get_run(run_id), client.get_run(ref.info.run_id)

    def info(run):
        i = run.info
        return (i.status, i.start_time, i.end_time, i.run_name, i.lifecycle_stage, i.user_id,
                i.experiment_id, i.artifact_uri.replace(i.run_id, "RUN"))

    assert info(got) == info(want)
    assert got.data.tags == want.data.tags
    assert got.data.params == want.data.params == {"lr": "0.1", "layers": "[64, 32]"}
    assert str(got.data.metrics) == str(want.data.metrics)  # str: nan == nan
    assert got.data.metrics["loss"] == 2.5  # the latest step, not the last value written
    def hist(rid, key):
        return [(m.value, m.step, m.timestamp) for m in client.get_metric_history(rid, key)]

    for key in ("loss", "value", "nan", "inf"):
        assert str(hist(run_id, key)) == str(hist(ref.info.run_id, key))


def test_finished_runs_written_in_one_transaction_read_back_as_mlflows_own(store):
    """The SQL fast path leaves exactly what MLflow's create_run/log_batch/set_terminated do."""
    from mlkit.track._writer import FinishedRun, write_finished

    client, exp = store
    assert type(client._tracking_client.store).__name__ == "SqlAlchemyStore"
    runs = [_finished_example()] + [FinishedRun(f"trial-{i}", metrics=[("value", i, 0)])
                                    for i in range(50)]
    ids = write_finished(client, exp, runs)
    assert len(ids) == len(set(ids)) == 51
    _same_as_mlflows_own(client, exp, ids[0])
    found = client.search_runs([exp], "attributes.status = 'FINISHED'", max_results=100)
    assert sorted(r.data.metrics["value"] for r in found) == list(range(50))


def test_finished_runs_on_a_store_without_sql_are_written_through_mlflows_api(
    tmp_path, monkeypatch
):
    import mlflow

    # MLflow's file store: a store that is no SqlAlchemyStore, as a tracking server is
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlkit.track._writer import write_finished

    client = mlflow.MlflowClient(f"file://{tmp_path / 'mlruns'}")
    exp = client.create_experiment("file-store")
    (run_id,) = write_finished(client, exp, [_finished_example()])
    _same_as_mlflows_own(client, exp, run_id)


def test_a_run_mlflow_would_refuse_stops_the_call_before_anything_is_written(store):
    from mlkit.track._writer import FinishedRun, write_finished

    client, exp = store
    with pytest.raises(Exception, match="BOGUS"):
        write_finished(client, exp, [FinishedRun("ok"), FinishedRun("bad", status="BOGUS")])
    assert client.search_runs([exp]) == []
