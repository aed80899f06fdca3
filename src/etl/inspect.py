"""What ``etl inspect`` shows of a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etl.dataset import Dataset
from etl.errors import ConfigError


def inspect_dataset(path: str | Path, *, sample: int = 3) -> dict[str, Any]:
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    ds = Dataset(Path(path))
    if not ds.root.is_dir():
        raise ConfigError(f"no dataset at {path}", hint="give the folder a [sink] path points to")
    files = ds.data_files()
    runs = ds.manifests()
    if not files and not runs:
        raise ConfigError(f"{path} holds no etl dataset (no data files, no _etl/runs)")
    schema: list[dict[str, str]] = []
    rows = 0
    sample_rows: list[dict[str, Any]] = []
    if files:
        dataset = pads.dataset([str(f) for f in files], format="parquet")
        schema = [{"name": f.name, "type": str(f.type)} for f in dataset.schema]
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if sample:
            cols = [
                c
                for c in ("id", "title", "publisher", "published_at", "uri", "text")
                if c in dataset.schema.names
            ]
            sample_rows = dataset.head(sample, columns=cols).to_pylist()
    rejects = sum(pq.ParquetFile(f).metadata.num_rows for f in ds.rejects_files())
    return {
        "path": str(ds.root),
        "rows": rows,
        "files": len(files),
        "rejects": rejects,
        "schema": schema,
        "runs": [
            {
                "run_id": m.get("run_id"),
                "finished_at": m.get("finished_at"),
                "written": m.get("summary", {}).get("written"),
                "rejected": m.get("summary", {}).get("rejected"),
            }
            for m in runs
        ],
        "sample": sample_rows,
    }
