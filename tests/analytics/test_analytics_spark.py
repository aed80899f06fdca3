"""Spark reads a dataset written by etl (grown schema, hive partitions) as DuckDB does."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: JVM options of the test's driver (what is measured is Spark's reading, not its JIT)
JVM_FLAGS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None:
        pytest.skip("needs Java (a JRE 17+) for PySpark")
    pyspark_sql = pytest.importorskip("pyspark.sql", reason="needs pyspark (pip install pyspark)")
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("etl-analytics-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        # a few small queries: the JIT's C1 tier alone, and one GC thread, start the driver
        # JVM on about half the CPU that its server defaults (C2, parallel GC) spend
        .config("spark.driver.extraJavaOptions", JVM_FLAGS)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.mark.parametrize("name", ["seed", "news", "parted"])
def test_spark_reads_etl_dataset_like_duckdb(spark, datasets, name):
    import duckdb

    root = datasets[name]
    df = spark.read.option("mergeSchema", "true").parquet(str(root))
    grown = name != "seed"
    if grown:
        assert {"sentences", "length_bucket", "language", "published_at"} <= set(df.columns)
    extra = "count(sentences)" if grown else "count(id)"
    spark_stats = df.selectExpr(
        "count(*)",
        extra,
        "count(DISTINCT id)",
        "sum(word_count)",
        "CAST(min(published_at) AS STRING)",
    ).collect()[0]
    src = f"read_parquet('{root}/**/*.parquet', union_by_name = true, hive_partitioning = true)"
    duck = duckdb.sql(
        f"SELECT count(*), {extra}, count(DISTINCT id), sum(word_count), "
        f"strftime(min(published_at) AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') FROM {src}"
    ).fetchall()[0]
    assert tuple(spark_stats) == tuple(duck)
    # a few values: per-language counts and one article's fields agree
    spark_langs = {r[0]: r[1] for r in df.groupBy("language").count().collect()}
    duck_langs = dict(duckdb.sql(f"SELECT language, count(*) FROM {src} GROUP BY 1").fetchall())
    assert spark_langs == duck_langs
    cols = ["id", "title", "publisher"] + (["sentences"] if grown else [])
    first = duckdb.sql(f"SELECT {', '.join(cols)} FROM {src} ORDER BY id LIMIT 3").fetchall()
    got = df.select(*cols).orderBy("id").limit(3).collect()
    assert [tuple(r) for r in got] == first
