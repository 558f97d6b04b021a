"""GPU discovery and selection with a faked NVML (the real one is exercised on GPU machines)."""

from __future__ import annotations

import pytest

import mlkit
from mlkit.cluster import _gpu
from mlkit.exceptions import ConfigError, GPUUnavailableError


class FakeNVML:
    """Implements the slice of the pynvml API mlkit uses."""

    class NVMLError(Exception):
        pass

    def __init__(self, names=("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"), fail=None):
        self.names = list(names)
        self.fail = fail
        self.shutdowns = 0

    def nvmlInit(self):
        if self.fail:
            raise self.NVMLError(self.fail)

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return len(self.names)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, h):
        return self.names[h].encode()  # old bindings return bytes

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h:04d}-fake"

    def nvmlDeviceGetMemoryInfo(self, h):
        return type("Mem", (), {"total": 80 * 2**30, "used": (h + 1) * 2**30})()

    def nvmlDeviceGetUtilizationRates(self, h):
        return type("Util", (), {"gpu": 10 * h})()


def test_probe_reads_every_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = FakeNVML()
    found = _gpu.probe(nvml)
    assert [g.index for g in found.gpus] == [0, 1]
    assert found.gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert found.gpus[1].memory_used == 2 * 2**30 and found.gpus[1].utilization == 10
    assert nvml.shutdowns == 1 and found.reason is None


def test_probe_without_driver_records_reason():
    found = _gpu.probe(FakeNVML(fail="Driver Not Loaded"))
    assert not found and "Driver Not Loaded" in found.reason


def test_real_probe_on_this_machine_explains_itself():
    found = mlkit.cluster.gpus()
    assert found.gpus or found.reason  # never silent


@pytest.mark.parametrize(
    "visible, expected",
    [("1", [1]), ("1,0", [1, 0]), ("GPU-0001", [1]), ("0,7", [0]), ("-1", []), ("", [])],
)
def test_cuda_visible_devices_is_honoured(monkeypatch, visible, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    found = _gpu.probe(FakeNVML())
    assert [g.index for g in found.gpus] == expected
    if not expected:
        assert "CUDA_VISIBLE_DEVICES" in found.reason


@pytest.mark.parametrize(
    "spec, expected",
    [("all", [0, 1, 2, 3]), (2, [0, 1]), ("3", [0, 1, 2]), ("0,2", [0, 2]), ([3, 1], [3, 1])],
)
def test_select(monkeypatch, spec, expected):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    found = _gpu.probe(FakeNVML(names=["A100"] * 4))
    assert [g.index for g in _gpu.select(spec, found)] == expected


@pytest.mark.parametrize(
    "spec, error, text",
    [
        (5, GPUUnavailableError, "only 4 visible"),
        ("0,9", GPUUnavailableError, "[9] not visible"),
        ("zero", ConfigError, "'all', a count"),
        (0, ConfigError, ">= 1"),
        ("1,1", ConfigError, "twice"),
    ],
)
def test_select_rejects_bad_specs(monkeypatch, spec, error, text):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    found = _gpu.probe(FakeNVML(names=["A100"] * 4))
    with pytest.raises(error, match=pytest.importorskip("re").escape(text)):
        _gpu.select(spec, found)


def test_gpus_requested_without_gpus_is_an_error_not_a_cpu_cluster():
    with pytest.raises(GPUUnavailableError, match="no GPU is visible"):
        mlkit.cluster.plan(gpus="all", nvml=FakeNVML(fail="NVML Shared Library Not Found"))
    with pytest.raises(GPUUnavailableError):
        mlkit.cluster.up(gpus=1, nvml=FakeNVML(fail="no driver"))
    assert mlkit.cluster.current() is None or mlkit.cluster.current().kind != "cuda"


def test_plan_builds_one_cuda_worker_per_selected_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    p = mlkit.cluster.plan(gpus="1,3", memory_limit="8GB", nvml=FakeNVML(names=["H100"] * 4))
    assert p.kind == "cuda" and p.cluster_class == "dask_cuda.LocalCUDACluster"
    assert p.kwargs["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert p.kwargs["n_workers"] == 2 and p.kwargs["memory_limit"] == "8GB"
    assert p.kwargs["host"] == "127.0.0.1"
    # its worker processes leave the kernel's process group (the Interrupt button's reach)
    assert p.kwargs["preload"] == ["mlkit.cluster._isolate"]


def test_plan_uses_visible_gpus_by_default_and_cpu_when_workers_given(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = FakeNVML(names=["H100"] * 2)
    assert mlkit.cluster.plan(nvml=nvml).kind == "cuda"
    assert mlkit.cluster.plan(workers=3, nvml=nvml).kind == "local"
    with pytest.raises(ConfigError, match="one worker per GPU"):
        mlkit.cluster.plan(workers=3, gpus="all", nvml=nvml)


def test_plan_without_gpus_is_a_local_process_cluster():
    p = mlkit.cluster.plan(workers=2, threads_per_worker=2, nvml=FakeNVML(fail="none"))
    assert p.kind == "local" and p.kwargs["processes"] is True
    assert p.kwargs["n_workers"] == 2 and p.kwargs["threads_per_worker"] == 2
