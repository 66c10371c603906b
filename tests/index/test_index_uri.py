"""related_notes reading its index through a URI: executors copy the build to their cache."""

from __future__ import annotations

from jobs import related_notes
from notellm2_udf.files.remote_files import default_cache_dir
from tests.support.index_runs import DAY, assert_same_related, build, ids, relate
from tests.support.vectors import clustered_vectors, embeddings_pdf, read_related, write_embeddings


def test_related_notes_from_a_file_uri_equal_those_from_the_path(spark, index_paths):
    xb = clustered_vectors(300, seed=3)
    write_embeddings(spark, index_paths[0], embeddings_pdf(ids(300), xb, dt=DAY))
    assert build(index_paths, "--index-type", "flat", "--num-shards", "2") == 0
    assert relate(index_paths, "--top-k", "10") == 0
    from_path = read_related(spark, index_paths[2], DAY)

    embeddings, index_dir, related = index_paths
    uri_paths = (embeddings, index_dir.as_uri(), related + "_uri")
    assert relate(uri_paths, "--top-k", "10") == 0
    assert_same_related(read_related(spark, uri_paths[2], DAY), from_path)
    assert len(from_path) == 300 and all(len(pairs) == 10 for pairs in from_path.values())

    build_name = related_notes.read_manifest(str(index_dir), DAY).build
    copies = list(default_cache_dir().glob(f"{build_name}-{build_name}"))
    assert len(copies) == 1
    assert sorted(p.name for p in copies[0].iterdir()) == sorted(
        p.name for p in (index_dir / f"dt={DAY}" / build_name).iterdir())
