"""The embedding job with its model given as a URI: executors copy it once, same rows."""

from __future__ import annotations

import numpy as np

from jobs import embed_notes
from notellm2_udf.files.remote_files import default_cache_dir
from notellm2_udf.model.checkpoint import model_version
from notellm2_udf.spark.delta_io import replace_days
from schemas import NOTES
from tests.support.bad_notes import DAY
from tests.support.tolerances import EMBEDDING_ATOL


def test_a_model_at_a_file_uri_gives_the_encoders_rows(spark, day_notes_pdf, tiny_checkpoint,
                                                       tiny_encoder, tmp_path):
    notes = str(tmp_path / "notes")
    pdf = day_notes_pdf[~day_notes_pdf["note_id"].str.startswith("dup-")].head(12)
    replace_days(spark.createDataFrame(pdf, NOTES.schema), NOTES, notes, DAY)
    argv = ["--date", DAY, "--notes", notes, "--model", tiny_checkpoint.as_uri(),
            "--embeddings", str(tmp_path / "emb"), "--errors", str(tmp_path / "err")]
    assert embed_notes.main(argv) == 0

    by_id = spark.read.format("delta").load(str(tmp_path / "emb")).toPandas() \
        .set_index("note_id")
    kept = pdf[pdf["note_id"].isin(by_id.index)]
    assert len(kept) >= 8
    direct, _ = tiny_encoder.encode(kept)
    from_job = np.stack(by_id.loc[kept["note_id"], "embedding"].to_numpy())
    np.testing.assert_allclose(from_job, direct, atol=EMBEDDING_ATOL)
    assert set(by_id["model_version"]) == {tiny_encoder.model_version}
    copies = list(default_cache_dir().glob(f"{tiny_checkpoint.name}-*"))
    assert [model_version(copy) for copy in copies].count(tiny_encoder.model_version) >= 1
