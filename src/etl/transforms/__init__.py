"""The bundled transforms: filter, fields, python, quality and dedup (exact and near).

Each lives in its own module and is imported only when the plugin manager registers the
builtins. ``normalize`` and ``language`` need heavier packages (ftfy, py3langid) and live in
the plugin package ``plugins/etl-nlp``.
"""

from __future__ import annotations

from etl.hookspecs import hookimpl


@hookimpl
def etl_register_plugins(register):
    from etl.transforms.dedup import DedupTransform
    from etl.transforms.fields import FieldsTransform
    from etl.transforms.filter import FilterTransform
    from etl.transforms.python import PythonTransform
    from etl.transforms.quality import QualityTransform

    for cls in (
        FilterTransform,
        FieldsTransform,
        PythonTransform,
        QualityTransform,
        DedupTransform,
    ):
        register(cls)


@hookimpl
def etl_before_run(run, pipeline):
    """Tell ``dedup`` (dataset = "sink") where the run's parquet dataset is."""
    sink = getattr(pipeline, "sink", None)
    if sink is None or sink.plugin != "parquet" or not isinstance(sink.options.get("path"), str):
        return
    from etl.plugin import resolve_path

    run.extra[SINK_DATASET] = resolve_path(sink.options["path"], pipeline.base_dir)


#: RunInfo.extra key: the parquet sink's dataset folder, for dedup's dataset = "sink"
SINK_DATASET = "etl.transforms.sink_dataset"
