"""docs/SQL.md: every query runs and answers what its text says, in-process and through
`notellm2 sql` in its own Spark process."""

from __future__ import annotations

import getpass
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notellm2_udf.cli.sql import markers, run_statement, statements_of_file
from notellm2_udf.services.daemons import free_port
from notellm2_udf.services.sql_server import SqlServer, beeline_command
from notellm2_udf.serving.publication import publication_record, update_table_properties
from notellm2_udf.spark.delta_io import read_day
from tests.support.processes import REPO_ROOT, private_install_env
from tests.support.related_world import (
    DAYS,
    HOSTILE_ID,
    HOSTILE_TITLE,
    MODEL_VERSION,
    NO_CONTENT_ID,
    TOP_K,
    shared_world,
)

SQL_DOC = REPO_ROOT / "docs" / "SQL.md"
DAY = DAYS[1]
PARAMS = {"day": DAY, "note_id": HOSTILE_ID}


def doc_queries() -> dict[str, str]:
    queries = {}
    for statement in statements_of_file(SQL_DOC):
        name = re.match(r"--\s*query:\s*(\w+)", statement)
        assert name, f"a query of docs/SQL.md lacks its '-- query: NAME' line:\n{statement}"
        queries[name.group(1)] = statement
    return queries


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    world = shared_world(spark, tmp_path_factory)
    loc = world.locations
    record = publication_record(read_day(spark, loc["related_notes"], DAY),
                                read_day(spark, loc["note_embeddings"], DAY),
                                read_day(spark, loc["embedding_errors"], DAY), DAY, "test")
    update_table_properties(spark, record)
    return world


@pytest.fixture(scope="module")
def answers(spark, world) -> dict[str, list[tuple]]:
    results = {}
    for name, statement in doc_queries().items():
        _, rows = run_statement(spark, statement, PARAMS, max_rows=1000)
        results[name] = rows
    return results


def test_every_documented_query_is_checked_here(answers):
    assert set(answers) == {
        "related_in_rank_order", "related_with_titles", "day_coverage", "errors_by_stage",
        "score_quantiles_by_rank", "score_histogram", "published_properties"}


def _expected_related(world):
    return [row for row in world.related if row[0] == DAY and row[1] == HOSTILE_ID]


def test_related_notes_in_rank_order(answers, world):
    expected = _expected_related(world)
    assert [(rank, other) for rank, other, _, _ in answers["related_in_rank_order"]] == [
        (rank, other) for _, _, rank, other, _ in expected]
    scores = [score for _, _, score, _ in answers["related_in_rank_order"]]
    assert scores == pytest.approx([score for *_, score in expected], abs=1e-6)
    assert {version for *_, version in answers["related_in_rank_order"]} == {MODEL_VERSION}


def test_related_notes_with_titles(answers, world):
    rows = answers["related_with_titles"]
    assert [other for _, other, _, _ in rows] == [other for *_, other, _ in
                                                  _expected_related(world)]
    for _, other, title, _ in rows:
        assert title == (None if other == NO_CONTENT_ID else f"note {int(other[-6:])} of "
                         f"{other[:4]}-{other[4:6]}-{other[6:8]}") or title == HOSTILE_TITLE


def test_day_coverage(answers):
    # day 2: 6 notes, 5 embedded (one has nothing), 2 with errors (one image refused and
    # embedded anyway), all 5 with related notes; queries are the whole window (6 + 5).
    assert answers["day_coverage"] == [(6, 5, 2, 0, 5, 1.0, 11, 11 * TOP_K)]


def test_errors_by_stage(answers):
    assert [(stage, errors) for stage, errors, _ in answers["errors_by_stage"]] == [
        ("image", 1), ("input", 1)]
    assert answers["errors_by_stage"][0][2].startswith("image refused")


def test_score_distribution(answers, world):
    scores = [score for dt, *_, score in world.related if dt == DAY]
    bands = {band: (pairs, low, high)
             for band, pairs, low, _, high in answers["score_quantiles_by_rank"]}
    assert list(bands) == ["1", "2-10"]
    assert bands["1"][0] == 11 and bands["2-10"][0] == 11 * (TOP_K - 1)
    assert min(bands["2-10"][1], bands["1"][1]) == pytest.approx(min(scores), abs=1e-4)
    assert bands["1"][2] == pytest.approx(max(scores), abs=1e-4)
    histogram = answers["score_histogram"]
    assert sum(pairs for *_, pairs in histogram) == len(scores)
    assert all(1 <= bucket <= 20 for bucket, *_ in histogram)
    assert histogram[0][:2] == (1, pytest.approx(min(scores), abs=1e-4))
    assert histogram[-1][0] == 20  # the highest score falls in the last bucket


def test_published_properties(answers):
    assert answers["published_properties"] == [("notellm2.published_dt", DAY)]


def test_markers_are_found_outside_strings_only():
    assert markers("SELECT ':x', a::int FROM t WHERE dt = :day -- :nope\n AND id = :note_id") \
        == {"day", "note_id"}


@pytest.mark.slow
def test_notellm2_sql_runs_the_doc_in_its_own_process(world, tmp_path):
    env = private_install_env(tmp_path)
    register = ["CREATE DATABASE IF NOT EXISTS notellm2"] + [
        f"CREATE TABLE notellm2.{name} USING DELTA LOCATION '{location}'"
        for name, location in world.locations.items()]
    command = [str(Path(sys.executable).parent / "notellm2"), "sql",
               "--param", f"day={DAY}", "--param", f"note_id={HOSTILE_ID}",
               *register, "-f", str(SQL_DOC)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = result.stdout.split("\n\n")
    coverage = next(block for block in blocks if block.startswith("notes\tembedded"))
    assert coverage.splitlines()[1] == "6\t5\t2\t0\t5\t1\t11\t33"
    titles = next(block for block in blocks if block.startswith("rank\trelated_note_id\ttitle"))
    assert len(titles.splitlines()) == 1 + TOP_K

    bad = subprocess.run(command[:2] + ["SELECT * FROM notellm2.no_such_table"], env=env,
                         capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("notellm2 sql: statement 1:")


@pytest.fixture(scope="module")
def sql_server(server_install):
    """`notellm2 sql-server`'s HiveThriftServer2 on a free loopback port, on the private
    installation's shared metastore; stopped afterwards, also when a test fails."""
    env, root, _ = server_install
    server = SqlServer(root / "run", free_port(), master="local[1]")
    server.start(env)
    try:
        yield server
    finally:
        server.stop()


def with_literals(statement: str, params: dict[str, str]) -> str:
    """The statement with its :name markers written as SQL string literals (JDBC clients
    such as beeline have no named markers); the test values need no escaping."""
    for name in markers(statement):
        statement = re.sub(rf"(?<![:\w]):{name}\b", f"'{params[name]}'", statement)
    return statement


@pytest.mark.slow
def test_beeline_runs_the_doc_through_the_sql_server(sql_server, server_install, world,
                                                     answers, tmp_path):
    env, _, _ = server_install
    script = ["CREATE DATABASE IF NOT EXISTS notellm2;"] + [
        f"CREATE TABLE notellm2.{name} USING DELTA LOCATION '{location}';"
        for name, location in world.locations.items()]
    for name, statement in doc_queries().items():
        script += [f"SELECT '{name}' AS doc_query;", with_literals(statement, PARAMS) + ";"]
    (tmp_path / "doc.sql").write_text("\n".join(script) + "\n")
    result = subprocess.run(
        beeline_command(sql_server.port, user=getpass.getuser(),
                        args=["-f", str(tmp_path / "doc.sql")]),
        env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    # Each query's block: the marker's value, then the query's header and rows (beeline
    # separates statements' output with blank lines).
    blocks = {}
    for block in result.stdout.split("doc_query\n")[1:]:
        lines = [line for line in block.split("\n") if line]
        blocks[lines[0]] = [line.split("\t") for line in lines[2:]]
    assert set(blocks) == set(answers)
    for name, expected in answers.items():
        assert len(blocks[name]) == len(expected), name
        for got_row, want_row in zip(blocks[name], expected):
            assert len(got_row) == len(want_row), name
            for got, want in zip(got_row, want_row):
                if isinstance(want, float):
                    assert float(got) == pytest.approx(want, abs=1e-5), name
                else:
                    assert got == ("NULL" if want is None else str(want)), name


READER_PYTHON = REPO_ROOT / ".venv-reader" / "bin" / "python"


def test_delta_rs_reader_of_the_doc_answers_the_top_k_query(world, answers, tmp_path):
    """The doc's Python block, run by .venv-reader (deltalake, no JVM), gives the rows of
    `related_in_rank_order`."""
    (block,) = re.findall(r"^```python\n(# reader: related_in_rank_order\n.*?)^```",
                          SQL_DOC.read_text(), re.MULTILINE | re.DOTALL)
    (tmp_path / "reader.py").write_text(block)
    result = subprocess.run([str(READER_PYTHON), str(tmp_path / "reader.py"),
                             world.locations["related_notes"], DAY, HOSTILE_ID],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    expected = answers["related_in_rank_order"]
    assert [(int(rank), other, version) for rank, other, _, version in rows] == [
        (rank, other, version) for rank, other, _, version in expected]
    assert [float(score) for _, _, score, _ in rows] == pytest.approx(
        [score for _, _, score, _ in expected], abs=1e-6)
    assert len(rows) == TOP_K
