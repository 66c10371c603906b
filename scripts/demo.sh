#!/usr/bin/env bash
# The demo behind `make demo`: the pipeline on sample data, local Spark + Delta + metastore.
# Run through make (it sets up the venvs, jars and spark-defaults.conf first).
set -euo pipefail
out_dir=$(realpath -m "${1:-demo_out}")
bin=.venv/bin

echo "== 1. sample notes (2 days x 200) -> $out_dir/notes, $out_dir/related_pairs"
"$bin/notellm2" sample-data --out "$out_dir" --start-date 2026-11-24 --days 2 --notes-per-day 200

echo "== 2. the tables through SQL (spark-sql, same metastore)"
"$bin/spark-sql" --conf spark.ui.showConsoleProgress=false --hiveconf hive.cli.print.header=true -e "
SELECT dt, count(*) AS notes, count(image) AS with_image, count(content) AS with_text
FROM notellm2.notes GROUP BY dt ORDER BY dt;
SELECT note_id, title, topics, length(image) AS image_bytes
FROM notellm2.notes WHERE dt = '2026-11-25' ORDER BY note_id LIMIT 5;
SELECT pair_kind, count(*) AS pairs, round(avg(score), 3) AS mean_score
FROM notellm2.related_pairs GROUP BY pair_kind ORDER BY pair_kind;
" 2>/dev/null
