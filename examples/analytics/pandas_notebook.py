# %% [markdown]
# # An etl dataset in pandas (notebook-style: each `# %%` is a cell)
#
#     python examples/analytics/pandas_notebook.py out/analytics/news
#
# Open it in Jupyter/VS Code as a notebook, or run it as a script.

# %%
import json
import sys
from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads

from etl.evolution import schema_history, unified_schema

DATASET = Path(
    sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "out/analytics/news"
)

# %% [markdown]
# Read every committed file with the dataset's unified schema (`_etl/schema.json`): columns a
# later run added are NaN/None in older rows. `_etl/` (metadata, rejects) is skipped by name.

# %%
schema = unified_schema(DATASET)
dataset = pads.dataset(
    DATASET, format="parquet", schema=schema, partitioning="hive", ignore_prefixes=["_", "."]
)
df = dataset.to_table(columns=[c for c in schema.names if c != "text"]).to_pandas()
print(df.shape)
print(pd.DataFrame(schema_history(DATASET)))

# %%
per_publisher = (
    df.groupby("publisher", dropna=False)
    .agg(articles=("id", "size"), median_words=("word_count", "median"))
    .sort_values(["articles"], ascending=False)
)
print(per_publisher)

# %%
per_language = df["language"].value_counts(dropna=False)
print(per_language)

# %%
monthly = df.dropna(subset=["published_at"]).set_index("published_at").resample("MS")["id"].count()
print(monthly.tail(12))

# %%
if "length_bucket" in df:
    print(df.groupby("run_id")["length_bucket"].apply(lambda s: s.notna().sum()))

# %% [markdown]
# The rejects table: one Parquet file per run that rejected something.

# %%
reject_files = sorted((DATASET / "_etl" / "rejects").glob("*.rejects.pq"))
rejects = (
    pd.concat([pd.read_parquet(f) for f in reject_files], ignore_index=True)
    if reject_files
    else pd.DataFrame(columns=["reason", "input", "location"])
)
print(rejects.groupby("reason").size())

# %%
summary = {
    "articles": int(len(df)),
    "per_publisher": {str(k): int(v) for k, v in per_publisher["articles"].items()},
    "rejects": {str(k): int(v) for k, v in rejects.groupby("reason").size().items()},
}
print("SUMMARY", json.dumps(summary, sort_keys=True))
