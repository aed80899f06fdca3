-- DuckDB over an etl dataset. Set the dataset folder first, then run this file:
--   duckdb -c "SET VARIABLE dataset = 'out/analytics/news'" -c ".read examples/analytics/queries.sql"
--   python examples/analytics/duckdb_queries.py out/analytics/news      (the same, from Python)
-- union_by_name: columns a later run added read as NULL in older files.
-- hive_partitioning: partition folders (language=en/) become columns.

CREATE OR REPLACE VIEW articles AS
SELECT * FROM read_parquet(getvariable('dataset') || '/**/*.parquet',
                           union_by_name = true, hive_partitioning = true);

-- name: totals
SELECT count(*) AS articles, count(DISTINCT run_id) AS runs, count(DISTINCT publisher) AS publishers,
       round(avg(word_count), 1) AS avg_words
FROM articles;

-- name: per_publisher
SELECT coalesce(publisher, '(none)') AS publisher, count(*) AS articles,
       median(word_count) AS median_words
FROM articles GROUP BY ALL ORDER BY articles DESC, publisher;

-- name: per_month
SELECT date_trunc('month', published_at) AS month, count(*) AS articles
FROM articles WHERE published_at IS NOT NULL GROUP BY ALL ORDER BY month;

-- name: per_run
SELECT run_id, count(*) AS articles, min(ingested_at) AS ingested_at
FROM articles GROUP BY ALL ORDER BY run_id;

-- name: rejects_by_reason
-- (the rejects table: one file per run that rejected something; none at all -> "No files found")
SELECT reason, count(*) AS rejects
FROM read_parquet(getvariable('dataset') || '/_etl/rejects/*.rejects.pq')
GROUP BY ALL ORDER BY rejects DESC, reason;

-- name: ids_check
SELECT count(*) FILTER (WHERE substr(sha256(text), 1, 32) <> id) AS bad_ids FROM articles;
