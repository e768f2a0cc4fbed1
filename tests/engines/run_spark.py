"""Runs a Spark SQL script (`xtenant query --engine spark-sql`) on local PySpark.

usage: run_spark.py QUERY.sql OUT.csv [QUERY.sql OUT.csv ...]

Each script's statements run in order, as Databricks or spark-sql would run
them; the last one's rows are written to its OUT.csv (header first, null as
empty), and by Spark's CSV writer to the folder OUT.csv.parts. One Spark
session runs them all (starting one takes seconds).
"""

import csv
import sys

from pyspark.sql import SparkSession


def statements(text):
    parts, current = [], []
    for line in text.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            parts.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if "".join(current).strip():
        parts.append("\n".join(current))
    return parts


def main():
    pairs = list(zip(sys.argv[1::2], sys.argv[2::2]))
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for query_path, out_path in pairs:
        result = None
        for statement in statements(open(query_path, encoding="utf-8").read()):
            result = spark.sql(statement)
        with open(out_path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(result.columns)
            for row in result.collect():
                w.writerow(["" if v is None else v for v in row])
        # And as a user would bring it back: Spark's own writer, a folder of
        # part files (read by `xtenant replay` as one table).
        result.write.mode("overwrite").option("header", True).csv(out_path + ".parts")
    spark.stop()


if __name__ == "__main__":
    main()
