"""The DAGs' helper modules (pure Python; imported here without Airflow): settings checks,
the Delta-log partition check of the sensor, guarded promotion."""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime

import pytest

from tests.support.airflow_env import DAG_FOLDER

sys.path.insert(0, str(DAG_FOLDER))
catalogue = importlib.import_module("notellm2_catalogue")
checks = importlib.import_module("notellm2_checks")
resolution = importlib.import_module("notellm2_resolve")
operators = importlib.import_module("notellm2_operators")
delta_log = importlib.import_module("notellm2_delta_log")
promote = importlib.import_module("notellm2_promote")
sys.path.remove(str(DAG_FOLDER))

REQUIRED = {"notes": "/lake/notes", "embeddings": "s3a://bucket/lake/note_embeddings",
            "errors": "hdfs://nn:8020/lake/errors", "related": "file:/lake/related",
            "index_root": "/shared/index", "model": "/shared/models/current"}


def resolve(params, variables=None):
    return resolution.resolve_settings(catalogue.DAILY_SETTINGS, params,
                                     lambda key: (variables or {}).get(key))


def test_param_beats_variable_beats_default():
    resolved = resolve({**REQUIRED, "top_k": "50", "model": None},
                       {"notellm2_model": "/from/variable", "notellm2_top_k": "7",
                        "notellm2_window_days": "14"})
    assert resolved["model"] == "/from/variable"
    assert resolved["top_k"] == 50 and resolved["window_days"] == 14
    assert resolved["min_recall"] == 0.9 and resolved["num_shards"] == ""
    assert resolved["embeddings"] == REQUIRED["embeddings"]


@pytest.mark.parametrize("bad", [
    "/lake/notes; rm -rf /", "/lake/$(whoami)", "/lake/`id`", "/lake/a b", "/lake/a|b",
    "/lake/a&b", "/lake/a>b", "/lake/*", "/lake/a\nb", "--conf=x", "-x", "/lake/'q'",
    "/lake/../etc", "s3a://bucket/../other", "..",
    '/lake/"q"', "/lake/a\\b", 42, ""])
def test_paths_with_shell_metacharacters_are_refused(bad):
    with pytest.raises(checks.SettingError, match="notes"):
        resolve({**REQUIRED, "notes": bad} if bad != "" else
                {k: v for k, v in REQUIRED.items() if k != "notes"})


@pytest.mark.parametrize("name,bad", [("top_k", "0"), ("top_k", "ten"), ("top_k", True),
                                      ("window_days", -1), ("min_recall", "1.5"),
                                      ("index_type", "ivf; ls"), ("queries", "some"),
                                      ("num_shards", "0")])
def test_numbers_and_choices_out_of_range_are_refused(name, bad):
    with pytest.raises(checks.SettingError, match=name):
        resolve({**REQUIRED, name: bad})


def test_every_problem_is_reported_at_once():
    with pytest.raises(checks.SettingError) as err:
        resolve({"notes": "/a b", "top_k": 0})
    message = str(err.value)
    for name in ("notes", "top_k", "embeddings"):
        assert f"{name}:" in message
    assert "Variable notellm2_embeddings" in message
    assert "model, models_root: give exactly one" in message


@pytest.mark.parametrize("name", ["spark_packages", "spark_jars", "spark_py_files",
                                  "spark_properties_file"])
def test_a_runs_conf_cannot_choose_code_or_jars(name):
    with pytest.raises(checks.SettingError, match=f"{name}: a run's conf cannot set it"):
        resolve({**REQUIRED, name: "/tmp/evil.jar"})
    assert resolve(REQUIRED, {f"notellm2_{name}": "/opt/jars/delta.jar"})[name] == (
        "/opt/jars/delta.jar")


@pytest.mark.parametrize("model", [{"models_root": "/shared/models"},
                                   {"model": "", "models_root": "/shared/models"}])
def test_a_registry_instead_of_one_model(model):
    resolved = resolve({**{k: v for k, v in REQUIRED.items() if k != "model"}, **model})
    assert (resolved["model"], resolved["models_root"]) == ("", "/shared/models")
    with pytest.raises(checks.SettingError, match="give exactly one"):
        resolve({**REQUIRED, "models_root": "/shared/models"})


@pytest.mark.parametrize("day", ["2026-11-25 ", "2026-11-31", "26-11-25", "2026/11/25",
                                 "2026-11-25; rm", "{{ ds }}", 20261125])
def test_days_that_are_not_yyyy_mm_dd_are_refused(day):
    with pytest.raises(checks.SettingError, match="day"):
        resolution.resolve_day({"day": day}, {"ds": "2026-11-25"})


def test_the_day_is_the_param_else_ds_else_the_interval_start():
    assert resolution.resolve_day({"day": "2026-11-20"}, {"ds": "2026-11-25"}) == "2026-11-20"
    assert resolution.resolve_day({"day": None}, {"ds": "2026-11-25"}) == "2026-11-25"
    start = datetime(2026, 11, 24, tzinfo=UTC)
    assert resolution.resolve_day({}, {"data_interval_start": start}) == "2026-11-24"
    with pytest.raises(checks.SettingError, match="no logical date"):
        resolution.resolve_day({}, {})


def test_optional_flags_render_to_nothing_when_empty():
    from jinja2 import Template

    class TI:
        def __init__(self, value):
            self.value = value

        def xcom_pull(self, task_ids):
            return {"num_shards": self.value, "use_gpu": self.value}

    flag = Template(operators.optional_flag("--num-shards", "num_shards"))
    assert flag.render(ti=TI(8)) == "--num-shards=8"
    assert flag.render(ti=TI("")) == ""
    switch = Template(operators.switch("--use-gpu", "use_gpu"))
    assert switch.render(ti=TI("true")) == "--use-gpu"
    assert switch.render(ti=TI("false")) == ""


def test_the_train_dag_steps_128_pairs_in_gradcache_sub_batches_by_default():
    resolved = resolution.resolve_settings(
        catalogue.TRAIN_SETTINGS, {"pairs": "/p", "notes": "/n", "models_root": "/m"},
        lambda key: {"notellm2_num_processes": "8"}.get(key))
    assert (resolved["global_batch_pairs"], resolved["sub_batch_pairs"]) == (128, 16)
    assert (resolved["validation_days"], resolved["eval_every"]) == (0, 1750)
    catalogue.check_batch_split(resolved)  # 8 x 16
    with pytest.raises(checks.SettingError, match="not a multiple of num_processes 3"):
        catalogue.check_batch_split({**resolved, "num_processes": 3})
    with pytest.raises(checks.SettingError, match="sub_batch_pairs"):
        resolution.resolve_settings(catalogue.TRAIN_SETTINGS,
                                  {"pairs": "/p", "notes": "/n", "models_root": "/m",
                                   "sub_batch_pairs": -1}, lambda key: None)


# --- the sensor's Delta log check ------------------------------------------------------


def test_partition_rows_follow_the_delta_log(spark, tmp_path):
    from notellm2_udf.spark.delta_io import replace_days
    from schemas import NOTES

    location = str(tmp_path / "notes")
    assert delta_log.partition_rows(location, "2026-11-24") is None

    def write(day, n):
        rows = [(day, f"{day}-{i}", "t", "c", [], None) for i in range(n)]
        replace_days(spark.createDataFrame(rows, NOTES.schema).repartition(2), NOTES,
                     location, day)

    write("2026-11-24", 5)
    spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES "
              "('delta.checkpointInterval' = '2')")
    write("2026-11-25", 3)
    write("2026-11-24", 4)  # a rerun replaces the day: the old files are removed
    write("2026-11-26", 2)
    assert any(p.name.endswith(".checkpoint.parquet") for p in (tmp_path / "notes" /
                                                                "_delta_log").iterdir())
    assert delta_log.partition_rows(location, "2026-11-24") == 4
    assert delta_log.partition_rows(location, "2026-11-25") == 3
    assert delta_log.partition_rows("file:" + location, "2026-11-26") == 2
    assert delta_log.partition_rows(location, "2026-11-27") == 0
    # The producers' completeness signal, from the log's metaData (a checkpoint holds one).
    assert delta_log.closed_through(location) is None
    spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES "
              "('notellm2.closed_through' = '2026-11-25')")
    assert delta_log.closed_through(location) == "2026-11-25"
    assert delta_log.closed_through(str(tmp_path / "absent")) is None


# --- promotion -------------------------------------------------------------------------


def _metrics(path, recall):
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({"full": {"recall@100": recall}}))
    return str(path / "metrics.json")


def test_promotion_only_when_recall_does_not_drop(tmp_path):
    root = tmp_path / "models"
    (root / "base").mkdir(parents=True)
    first, second = root / "candidates" / "a", root / "candidates" / "b"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    assert promote.current_model(str(root)) == str(root / "base")

    decision = promote.decide_and_promote(str(root), "2026-11-16", str(first),
                                          _metrics(tmp_path / "r1c", 0.40),
                                          _metrics(tmp_path / "r1b", 0.40))
    assert decision["promoted"] is True
    assert (root / "current").resolve() == first.resolve()
    assert promote.current_model(str(root)) == str(first.resolve())

    decision = promote.decide_and_promote(str(root), "2026-11-23", str(second),
                                          _metrics(tmp_path / "r2c", 0.39),
                                          _metrics(tmp_path / "r2b", 0.40))
    assert decision["promoted"] is False and decision["previous"] == str(first.resolve())
    assert (root / "current").resolve() == first.resolve()
    log = [json.loads(line) for line in (root / "promotions.jsonl").read_text().splitlines()]
    assert [entry["promoted"] for entry in log] == [True, False]


def test_promotion_refuses_reports_without_the_metric_and_real_directories(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"image": {"recall@100": 0.9}}))
    with pytest.raises(promote.PromotionError, match="full.recall@100"):
        promote.read_metric(str(bad))
    (tmp_path / "current").mkdir()
    with pytest.raises(promote.PromotionError, match="not a symlink"):
        promote.swap_link(tmp_path / "current", tmp_path)
