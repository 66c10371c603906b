import pytest

from notellm2_udf.index.params import choose_params, default_num_shards


@pytest.mark.parametrize(("n", "expected"), [
    (1, "Flat"), (50_000, "Flat"), (50_001, "IVF894,Flat"), (1_000_000, "IVF4000,Flat"),
    (33_000_000, "IVF22978,Flat"), (34_000_000, "IVF23324,PQ32"),
])
def test_auto_picks_exact_then_ivf_flat_then_ivf_pq_at_64d(n, expected):
    assert choose_params(n=n, d=64).factory == expected


def test_defaults_at_one_million_64d_match_the_measured_setting():
    params = choose_params(n=1_000_000, d=64)
    assert (params.search, params.train_size(1_000_000)) == ("nprobe=16", 156_000)
    # 256 B of vector + 8 B of id per note, plus the 4000 centroids.
    assert params.shard_bytes(500_000) == 500_000 * 264 + 4000 * 256


def test_forced_types_and_small_corpora():
    assert choose_params(n=4000, d=32, index_type="ivf").factory == "IVF102,Flat"
    ivfpq = choose_params(n=4000, d=32, index_type="ivfpq")
    assert (ivfpq.factory, ivfpq.train_size(4000)) == ("IVF102,PQ16", 4000)
    assert choose_params(n=10, d=32, index_type="ivf").factory == "IVF1,Flat"
    assert choose_params(n=10, d=32, index_type="ivf").search == "nprobe=1"
    assert choose_params(n=10, d=32, index_type="hnsw").search == "efSearch=128"


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="index type"):
        choose_params(n=10, d=8, index_type="lsh")
    with pytest.raises(ValueError, match="even dimension"):
        choose_params(n=10, d=7, index_type="ivfpq")


def test_default_shards_follow_cores_but_stay_large():
    assert default_num_shards(n=1_000, parallelism=8) == 1
    assert default_num_shards(n=120_000, parallelism=8) == 2
    assert default_num_shards(n=1_000_000, parallelism=2) == 2
