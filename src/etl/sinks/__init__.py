"""The bundled sinks: ``parquet`` (:mod:`etl.sinks.parquet`). Plugin packages add others
(``delta`` under plugins/, the DuckDB example under examples/plugins/)."""
