"""Run dask work on the cluster with progress that appears only when the work is slow, and that
a notebook's stop button (KeyboardInterrupt) can cancel, leaving the cluster usable.

The bars are distributed's own (``ProgressWidget`` in a kernel, ``TextProgressBar`` elsewhere):
they follow every task of the graph on the scheduler, which a client-side counter cannot.
"""

from __future__ import annotations

import sys
from typing import Any

from mlkit._display import done_quietly, end_view
from mlkit._interrupt import interruptible, settle

__all__ = ["compute", "per_partition"]

def compute(
    *collections: Any, client: Any = None, progress: bool | None = None
) -> tuple[Any, ...]:
    """Compute dask collections together on the cluster (one graph); return their results.

    Parameters
    ----------
    *collections
        Dask collections or delayed objects; computed in ONE graph so shared inputs are read once.
    client : distributed.Client, optional
        Defaults to :func:`mlkit.cluster.get_client`.
    progress : bool, optional
        Force the bar on or off; by default it shows when the work takes longer than 2 s
        (:data:`mlkit._display.QUIET_SECONDS`).

    Examples
    --------
    >>> total, n = compute(ddf.x.sum(), ddf.x.count())   # doctest: +SKIP
    """
    if client is None:
        from mlkit.cluster import get_client

        client = get_client()
    view = None
    # Interrupted or failed: the work is cancelled so the cluster is free for the next cell.
    with interruptible(client) as scope:
        futures = scope.track(client.compute(list(collections)))
        try:
            text = None
            if not done_quietly(futures, progress):
                view, text = _show(client, futures)
            results = tuple(_gather_as_completed(futures))
            if text is not None:  # the bar draws its 100% line, then the cell goes on
                settle(lambda: getattr(text, "status", None) in ("finished", "error"))
                sys.stdout.write("\n")
        except BaseException as exc:
            end_view(view, exc)
            raise
        # The results are here: nothing may keep them alive on the workers (a reference kept
        # anywhere, a traceback cycle say, held every pass's results until the client's next
        # garbage collection).
        scope.futures.clear()
        del futures
        end_view(view)
        return results


def _gather_as_completed(futures: list[Any]) -> list[Any]:
    """The futures' results in order, each fetched as soon as it is ready and released at once.

    ``client.gather(futures)`` waits for the last one first, so every partition's result sits in
    worker memory until the whole graph is done (a fit's histogram pass: 1.3 MB per partition,
    all of them at once); here a worker holds only what has not been fetched yet.
    """
    from distributed import as_completed

    values: dict[Any, Any] = {}
    for future, value in as_completed(futures, with_results=True):
        values[future.key] = value
        future.release()
    return [values[f.key] for f in futures]



def _show(client: Any, futures: list[Any]) -> tuple[Any, Any]:
    """``(view, text_bar)``: a kernel gets distributed's widget (ending as a static line),
    elsewhere distributed's text bar. Both draw from the client's IO loop, so the results are
    fetched meanwhile (the text bar would otherwise block until the whole graph is done)."""
    from mlkit._display import DaskProgress, can_draw_widgets

    if can_draw_widgets():
        return DaskProgress(futures, "computing on the cluster"), None
    from distributed.diagnostics.progressbar import TextProgressBar

    bar = TextProgressBar(futures, complete=True, start=False, loop=client.loop)
    client.loop.add_callback(bar.listen)
    return None, bar


def per_partition(
    func: Any, x: Any, client: Any = None, progress: bool | None = None
) -> list[Any]:
    """``[func(partition) for partition in x]`` computed on the cluster in one graph (a pandas
    frame is one partition, computed here). ``func`` should return something small.

    Examples
    --------
    >>> sizes = per_partition(len, ddf)     # doctest: +SKIP
    """
    import pandas as pd

    if isinstance(x, pd.DataFrame):
        return [func(x)]
    from dask import delayed

    parts = x.to_delayed(optimize_graph=True)
    return list(compute(*[delayed(func)(p) for p in parts], client=client, progress=progress))
