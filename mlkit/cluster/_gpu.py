"""GPU discovery through NVML. The only place in mlkit that talks to NVML.

NVML is optional: when the library or the driver is missing, :func:`probe` returns no GPUs and a
recorded reason (in the manner of ``distributed.diagnostics.nvml``) instead of raising, so
``mlkit info`` can say *why* no GPU was seen.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from mlkit.exceptions import ConfigError, GPUUnavailableError

__all__ = ["GPUInfo", "GPUProbe", "probe", "select"]


@dataclass(frozen=True)
class GPUInfo:
    """One GPU as NVML reports it. Memory in bytes, utilisation in percent."""

    index: int
    name: str
    uuid: str
    memory_total: int
    memory_used: int
    utilization: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GPUProbe:
    """Result of looking for GPUs: the visible ones, or the reason none were found."""

    gpus: list[GPUInfo] = field(default_factory=list)
    reason: str | None = None

    def __bool__(self) -> bool:
        return bool(self.gpus)


def _load_nvml() -> Any:
    """Import the NVML bindings (``nvidia-ml-py`` provides the ``pynvml`` module)."""
    import pynvml

    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _visible_filter(gpus: list[GPUInfo]) -> tuple[list[GPUInfo], str | None]:
    """Keep only the devices CUDA_VISIBLE_DEVICES lets CUDA see (indices or UUIDs)."""
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return gpus, None
    tokens = [t.strip() for t in raw.split(",") if t.strip()]
    if not tokens or tokens[0] in ("-1", "NoDevFiles"):
        return [], f"CUDA_VISIBLE_DEVICES={raw!r} hides every GPU"
    kept: list[GPUInfo] = []
    for tok in tokens:
        match = [
            g
            for g in gpus
            if (tok.isdigit() and g.index == int(tok))
            or (not tok.isdigit() and g.uuid.startswith(tok))
        ]
        if not match:
            # CUDA stops at the first invalid entry; so do we.
            break
        kept.extend(m for m in match if m not in kept)
    reason = None if kept else f"CUDA_VISIBLE_DEVICES={raw!r} names no GPU that NVML sees"
    return kept, reason


def probe(nvml: Any | None = None) -> GPUProbe:
    """List the GPUs this process may use.

    Parameters
    ----------
    nvml : module, optional
        An object with the ``pynvml`` API; tests pass a fake. Defaults to the real bindings.

    Returns
    -------
    GPUProbe
        ``gpus`` in CUDA_VISIBLE_DEVICES order, or an empty list and a ``reason``.

    Examples
    --------
    >>> from mlkit.cluster import gpus
    >>> result = gpus()
    >>> bool(result) or result.reason is not None
    True
    """
    if nvml is None:
        try:
            nvml = _load_nvml()
        except ImportError:
            return GPUProbe([], "NVML bindings not installed (pip install nvidia-ml-py)")
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return GPUProbe([], f"NVML unavailable: {exc or type(exc).__name__} (no NVIDIA driver?)")
    try:
        found = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            try:
                util = int(nvml.nvmlDeviceGetUtilizationRates(h).gpu)
            except Exception:  # MIG slices and some vGPUs do not report utilisation
                util = -1
            found.append(
                GPUInfo(
                    index=i,
                    name=_text(nvml.nvmlDeviceGetName(h)),
                    uuid=_text(nvml.nvmlDeviceGetUUID(h)),
                    memory_total=int(mem.total),
                    memory_used=int(mem.used),
                    utilization=util,
                )
            )
    except Exception as exc:
        return GPUProbe([], f"NVML query failed: {exc}")
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    if not found:
        return GPUProbe([], "NVML sees no GPU")
    visible, reason = _visible_filter(found)
    return GPUProbe(visible, reason)


def select(spec: str | int | list[int] | None, available: GPUProbe) -> list[GPUInfo]:
    """Choose GPUs from ``available`` according to ``spec``.

    Parameters
    ----------
    spec : {"all"}, int, str or list of int
        ``"all"``; a count (``2`` or ``"2"``) taking the first N visible GPUs; or device indices
        (``"0,1"`` or ``[0, 1]``) among the GPUs NVML sees.
    available : GPUProbe
        What :func:`probe` found.

    Raises
    ------
    GPUUnavailableError
        GPUs were asked for but none, or not the requested ones, are visible.

    Examples
    --------
    >>> a100 = [GPUInfo(i, "A100", f"GPU-{i}", 1, 0, 0) for i in range(2)]
    >>> fake = GPUProbe(a100)
    >>> [g.index for g in select("1", fake)], [g.index for g in select("0,1", fake)]
    ([0], [0, 1])
    """
    if spec is None:
        return []
    gpus = available.gpus
    if not gpus:
        raise GPUUnavailableError(
            f"gpus={spec!r} was requested but no GPU is visible ({available.reason}); "
            "leave gpus unset for a CPU cluster"
        )
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text == "all":
            return list(gpus)
        if "," in text:
            try:
                indices = [int(t) for t in text.split(",") if t.strip()]
            except ValueError:
                raise ConfigError(
                    f"gpus={spec!r} is not valid: use 'all', a count like 2, or indices like '0,1'"
                ) from None
            return _by_index(indices, gpus, spec)
        if not text.isdigit():
            raise ConfigError(
                f"gpus={spec!r} is not valid: use 'all', a count like 2, or indices like '0,1'"
            )
        spec = int(text)
    if isinstance(spec, bool):
        raise ConfigError(f"gpus={spec!r} is not valid: use 'all', a count, or indices")
    if isinstance(spec, int):
        if spec < 1:
            raise ConfigError(f"gpus must be >= 1, but got {spec}")
        if spec > len(gpus):
            raise GPUUnavailableError(
                f"gpus={spec} requested but only {len(gpus)} visible: "
                + ", ".join(f"{g.index}:{g.name}" for g in gpus)
            )
        return list(gpus[:spec])
    return _by_index(list(spec), gpus, spec)


def _by_index(indices: list[int], gpus: list[GPUInfo], spec: object) -> list[GPUInfo]:
    by_index = {g.index: g for g in gpus}
    missing = [i for i in indices if i not in by_index]
    if missing:
        raise GPUUnavailableError(
            f"gpus={spec!r}: device(s) {missing} not visible; visible devices are "
            f"{sorted(by_index)}"
        )
    if len(set(indices)) != len(indices):
        raise ConfigError(f"gpus={spec!r} names a device twice")
    return [by_index[i] for i in indices]
