"""sklearn-compatible preprocessing that fits on dask in passes of per-partition statistics."""
