"""The bundled transforms: filter, fields, python, quality and dedup (exact and near).

Each lives in its own module and is imported only when the plugin manager registers the
builtins. ``normalize`` and ``language`` need heavier packages (ftfy, py3langid) and live in
the plugin package ``plugins/etl-nlp``.
"""

from __future__ import annotations

from etl.hookspecs import hookimpl


@hookimpl
def etl_register_plugins(register):
    from etl.builtin.transforms.dedup import DedupTransform
    from etl.builtin.transforms.fields import FieldsTransform
    from etl.builtin.transforms.filter import FilterTransform
    from etl.builtin.transforms.python import PythonTransform
    from etl.builtin.transforms.quality import QualityTransform

    for cls in (
        FilterTransform,
        FieldsTransform,
        PythonTransform,
        QualityTransform,
        DedupTransform,
    ):
        register(cls)
