"""The run layer: plan -> stream -> commit.

* :mod:`~etl.run.plan`: check the pipeline, build its plugins, list the work units;
* :mod:`~etl.run.job`: the driver's side as executors see it (id filter, accounting);
* :mod:`~etl.run.worker`: the worker side (rebuild plugins, run chunks);
* :mod:`~etl.run.execute`: open the store, run the executor, commit through the store.
"""

from etl.run.execute import manifest, run_plan, safe_rejects, summarize
from etl.run.plan import Plan, build_plan, check_paths, new_run_id, redact_error

__all__ = [
    "Plan",
    "build_plan",
    "check_paths",
    "manifest",
    "new_run_id",
    "redact_error",
    "run_plan",
    "safe_rejects",
    "summarize",
]
