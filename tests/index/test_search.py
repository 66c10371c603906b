"""Per-shard search and the exact merge, without Spark."""

import faiss
import numpy as np
import pytest

from notellm2_udf.index.params import choose_params
from notellm2_udf.index.search import coarse_assignment, merge_topk, search_shards
from notellm2_udf.index.shards import fill_shard, train_index
from tests.support.tolerances import SCORE_ATOL
from tests.support.vectors import clustered_vectors


def shard_set(xb, trained, num_shards):
    """(index, offset) of contiguous ranges of xb, like the build job's range shards."""
    bounds = np.linspace(0, len(xb), num_shards + 1).astype(int)
    return [(fill_shard(trained, xb[lo:hi]), lo) for lo, hi in zip(bounds[:-1], bounds[1:])]


def exact(xb, k):
    """Unsharded exact search: one IndexFlatIP holding every vector."""
    flat = train_index(xb[:0], params=choose_params(n=len(xb), d=xb.shape[1], index_type="flat"))
    return search_shards(shard_set(xb, flat, 1), xb, k, exclude=np.arange(len(xb)))


def test_merge_orders_by_score_then_id_drops_self_and_pads():
    D = np.array([[0.5, 0.9, 0.5, 1.0], [0.2, 0.1, 0.0, 0.0]], dtype="float32")
    G = np.array([[7, 3, 2, 0], [4, 5, -1, -1]])
    D2, G2 = merge_topk(D, G, 4, exclude=np.array([0, 9]))
    assert G2.tolist() == [[3, 2, 7, -1], [4, 5, -1, -1]]
    assert D2[0, :3].tolist() == [pytest.approx(0.9), 0.5, 0.5]
    assert np.isneginf(D2[:, 3]).all()


def reference_merge(D, G, k, exclude):
    """merge_topk's contract row by row in plain Python."""
    rows_D, rows_G = [], []
    for row, own in zip(range(len(G)), exclude):
        kept = sorted((-float(d), int(g)) for d, g in zip(D[row], G[row])
                      if g >= 0 and g != own and not np.isnan(d))[:k]
        kept += [(np.inf, -1)] * (k - len(kept))
        rows_D.append([-d for d, _ in kept])
        rows_G.append([g for _, g in kept])
    return np.array(rows_D, dtype="float32"), np.array(rows_G)


@pytest.mark.parametrize("id_base", [0, 2**32 - 5, 2**40])  # ids within and past one key
def test_merge_equals_a_plain_sort_with_ties_signs_and_holes(id_base):
    rng = np.random.default_rng(id_base % 97)
    scores = np.array([-1.5, -0.0, 0.0, 0.25, 0.5, 2.0, -np.inf, np.inf, np.nan], "float32")
    for _ in range(300):
        nq, c, k = rng.integers(1, 12), rng.integers(1, 40), rng.integers(1, 50)
        D = rng.choice(scores, (nq, c))
        noisy = rng.random((nq, c)) < 0.3
        D[noisy] += rng.standard_normal(noisy.sum()).astype("float32")
        G = id_base + rng.permuted(np.tile(np.arange(3 * c), (nq, 1)), axis=1)[:, :c]
        G[rng.random((nq, c)) < 0.1] = -1
        exclude = np.where(rng.random(nq) < 0.5, id_base + rng.integers(0, 3 * c, nq), -1)
        D_merged, G_merged = merge_topk(D, G, k, exclude=exclude)
        D_expected, G_expected = reference_merge(D, G, k, exclude)
        assert np.array_equal(G_merged, G_expected)
        assert np.array_equal(D_merged, D_expected)  # -0.0 == 0.0
        assert D_merged.dtype == np.float32 and G_merged.dtype == np.int64


def test_sharded_exact_search_equals_unsharded():
    xb = clustered_vectors(3000)
    # Duplicates tie exactly: their order must come from the id, not the shard, also
    # where the tie straddles the k-th place.
    xb[100:110] = xb[5]
    D1, G1 = exact(xb, 50)
    flat = train_index(xb[:0], params=choose_params(n=len(xb), d=32, index_type="flat"))
    D3, G3 = search_shards(shard_set(xb, flat, 3), xb, 50, exclude=np.arange(len(xb)))
    assert np.array_equal(G3, G1)
    assert np.array_equal(D3, D1)

    # And both are the true top-50: scores match float64 brute force at every rank.
    scores = xb.astype("float64") @ xb.T.astype("float64")
    np.fill_diagonal(scores, -np.inf)
    np.testing.assert_allclose(D1, -np.sort(-scores, axis=1)[:, :50], atol=SCORE_ATOL)
    assert G1[5, :10].tolist() == list(range(100, 110))
    straddling = [row for row in range(len(xb)) if 0 < np.isin(G1[row], range(100, 110)).sum() < 10]
    assert straddling, "the data should have a tie group cut by the k-th place"
    for row in straddling:
        group = [g for g in G1[row] if g in range(100, 110) or g == 5]
        assert group == sorted(group) and group[0] == 5


def test_sharded_ivf_equals_unsharded_ivf_with_the_shared_quantizer():
    xb = clustered_vectors(3000)
    trained = train_index(xb, params=choose_params(n=len(xb), d=32, index_type="ivf"))
    results = []
    for num_shards in (1, 3):
        shards = shard_set(xb, trained, num_shards)
        for index, _ in shards:
            faiss.ParameterSpace().set_index_parameters(index, "nprobe=4")
        results.append(search_shards(shards, xb, 20, exclude=np.arange(len(xb))))
    (D1, G1), (D3, G3) = results
    assert np.array_equal(G3, G1)
    np.testing.assert_allclose(D3, D1, rtol=0, atol=SCORE_ATOL)


def tuned_shards(xb: np.ndarray, index_type: str, num_shards: int):
    """(IndexParams, shards) of `xb` with the index type's default search parameters set."""
    params = choose_params(n=len(xb), d=32, index_type=index_type)
    trained = train_index(xb[: params.train_size(len(xb))], params=params)
    shards = shard_set(xb, trained, num_shards)
    for index, _ in shards:
        if params.search:
            faiss.ParameterSpace().set_index_parameters(index, params.search)
    return params, shards


@pytest.mark.parametrize("index_type", ["ivf", "ivfpq", "hnsw"])
def test_approximate_recall_at_100_against_exact(index_type):
    xb = clustered_vectors(4000)
    params, shards = tuned_shards(xb, index_type, 2)
    _, G = search_shards(shards, xb, 100, exclude=np.arange(len(xb)))
    _, G_exact = exact(xb, 100)
    recall = np.mean([len(set(a) & set(b)) / 100 for a, b in zip(G, G_exact)])
    assert recall >= 0.95, f"{params.factory} {params.search}: recall@100 {recall:.3f}"


@pytest.mark.parametrize("index_type", ["ivf", "ivfpq"])
def test_one_coarse_assignment_gives_each_ivf_shard_its_own_search(index_type):
    # search_shards assigns the queries to lists once for all shards; that is only right
    # because the shards share the quantizer: each shard's scan of those lists must be,
    # bit for bit, what the shard's own search returns.
    xb = clustered_vectors(4000)
    _, shards = tuned_shards(xb, index_type, 3)
    lists, distances = coarse_assignment(shards, xb)
    assert lists.shape == (len(xb), shards[0][0].nprobe)
    for index, _ in shards:
        D, I = index.search(xb, 12)
        D_pre, I_pre = index.search_preassigned(xb, 12, lists, distances)
        assert np.array_equal(I_pre, I) and np.array_equal(D_pre, D)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_indexes_without_lists_are_searched_whole(index_type):
    xb = clustered_vectors(500)
    params = choose_params(n=len(xb), d=32, index_type=index_type)
    assert coarse_assignment(shard_set(xb, train_index(xb, params=params), 2), xb) is None
