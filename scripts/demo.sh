#!/usr/bin/env bash
# The demo behind `make demo`: the whole pipeline on sample data, local Spark + Delta +
# metastore. Run through make (it sets up the venvs, jars and spark-defaults.conf first).
set -euo pipefail
out_dir=$(realpath -m "${1:-demo_out}")
bin=.venv/bin
days=(2026-11-24 2026-11-25)
models=$out_dir/models
lake=$out_dir/lake
top_k=20
submit() { "$bin/spark-submit" --conf spark.ui.showConsoleProgress=false "$@"; }

echo "== 1. sample notes (2 days x 200) -> $out_dir/notes, $out_dir/related_pairs"
"$bin/notellm2" sample-data --out "$out_dir" --start-date "${days[0]}" --days 2 --notes-per-day 200

echo "== 2. a tiny NoteLLM-2: random init, a short training run (16 pairs a step: the sample is"
echo "      small) on the pairs before ${days[1]},"
echo "      promoted if its Recall@100 on ${days[1]} is not below the untrained model's"
rm -rf "$models" "$lake" "$out_dir/index"
"$bin/notellm2" init-model --tiny-random --out "$models/base"
ln -sfn base "$models/current"
# One spark-submit for the three jobs (scripts/run_jobs.py: one JVM, one session); the DAGs
# run each job as its own spark-submit.
submit scripts/run_jobs.py \
  train --pairs "$out_dir/related_pairs" --notes "$out_dir/notes" \
    --init-model "$models/base" --output "$models/candidates/demo" --epochs 2 --lr 1e-3 \
    --global-batch-pairs 16 \
  --- evaluate --pairs "$out_dir/related_pairs" --notes "$out_dir/notes" \
    --model "$models/candidates/demo/model" --report "$models/reports/demo/candidate" \
    --ks 10,100 --inputs full \
  --- evaluate --pairs "$out_dir/related_pairs" --notes "$out_dir/notes" \
    --model "$models/current" --report "$models/reports/demo/current" --ks 10,100 --inputs full
"$bin/python" airflow_dags/notellm2_promote.py --models-root "$models" --day demo \
  --candidate "$models/candidates/demo/model" \
  --candidate-metrics "$models/reports/demo/candidate/metrics.json" \
  --current-metrics "$models/reports/demo/current/metrics.json"

echo "== 3. the daily jobs, day by day (what the notellm2_daily DAG runs), in one spark-submit"
daily=()
for day in "${days[@]}"; do
  [ ${#daily[@]} -gt 0 ] && daily+=(---)
  daily+=(embed_notes --date "$day" --notes "$out_dir/notes" --model "$models/current"
          --embeddings "$lake/note_embeddings" --errors "$lake/embedding_errors"
    --- build_index --date "$day" --embeddings "$lake/note_embeddings" --index-dir "$out_dir/index"
    --- related_notes --date "$day" --embeddings "$lake/note_embeddings"
          --index-dir "$out_dir/index" --related "$lake/related_notes" --top-k "$top_k"
    --- validate_related --date "$day" --notes "$out_dir/notes"
          --embeddings "$lake/note_embeddings" --errors "$lake/embedding_errors"
          --related "$lake/related_notes" --top-k "$top_k"
    --- publish --date "$day" --embeddings "$lake/note_embeddings"
          --errors "$lake/embedding_errors" --related "$lake/related_notes" --run-id demo)
done
submit scripts/run_jobs.py "${daily[@]}"

echo "== 4. the tables through SQL, by name (the queries of docs/SQL.md)"
"$bin/notellm2" sql --param day="${days[1]}" --param note_id="${days[1]//-/}-000003" \
  -f docs/SQL.md 2>/dev/null

echo "== 5. the QA report"
"$bin/notellm2" report --date "${days[1]}" --out "$out_dir/report.html" 2>/dev/null
echo "open file://$out_dir/report.html in a browser"
