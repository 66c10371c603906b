"""Reading contract tables: the table, one pruned day of it, or one line saying why not."""

from __future__ import annotations

import pytest

from notellm2_udf.errors import JobInputError
from notellm2_udf.spark.tables import first_line, read_table, read_table_day
from schemas import RELATED_PAIRS


@pytest.fixture(scope="module")
def pairs_location(spark, tmp_path_factory):
    location = str(tmp_path_factory.mktemp("tables") / "pairs")
    # Exactly the contract's columns: no optional pair_kind (sample data only).
    (spark.createDataFrame([("a", "b", 0.5, "2026-11-24"), ("c", "d", 0.7, "2026-11-25")],
                           "note_id string, related_note_id string, score double, dt string")
     .write.format("delta").partitionBy("dt").save(location))
    return location


def test_a_table_of_exactly_the_contract_columns_reads_and_a_day_is_one_partition(
        spark, pairs_location):
    assert read_table(spark, pairs_location, RELATED_PAIRS).count() == 2
    day = read_table_day(spark, pairs_location, RELATED_PAIRS, "2026-11-25").collect()
    assert [(row["note_id"], row["related_note_id"]) for row in day] == [("c", "d")]
    with pytest.raises(ValueError):
        read_table_day(spark, pairs_location, RELATED_PAIRS, "2026-11-25' OR '1'='1")


def test_a_missing_table_or_column_is_one_line_naming_it(spark, pairs_location, tmp_path):
    with pytest.raises(JobInputError, match=r"^cannot read related_pairs table .*nowhere") as err:
        read_table(spark, str(tmp_path / "nowhere"), RELATED_PAIRS)
    assert "\n" not in str(err.value)
    narrow = str(tmp_path / "narrow")
    spark.read.format("delta").load(pairs_location).drop("score").write.format("delta").save(
        narrow)
    lacks_score = r"lacks contract columns of related_pairs: \['score'\]"
    with pytest.raises(JobInputError, match=lacks_score):
        read_table(spark, narrow, RELATED_PAIRS)
    assert first_line(RuntimeError("first\nsecond")) == "first"
    assert first_line(RuntimeError("")) == "RuntimeError"
