"""The pipeline's fingerprint: what in a pipeline decides the rows an input gives.

One digest per source section: the source's fingerprint (its name and the options that
change rows, :meth:`etl.Plugin.fingerprint`) with every transform's, in order. The store
remembers it per input; an input remembered under another digest was ingested by another
pipeline, which ``etl run`` says before reading (and ``--reprocess`` redoes). The sink, the
executor and options that only choose or fetch inputs (``paths``, ``timeout``) are not part
of it: they do not change what an input gives.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etl.run.plan import Plan


def pipeline_fingerprints(plan: Plan) -> list[str]:
    """One digest per source of the plan (indexed like ``WorkUnit.source_index``)."""
    transforms = [t.fingerprint() for t in plan.transforms]
    return [_digest({"source": s.fingerprint(), "transforms": transforms}) for s in plan.sources]


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
