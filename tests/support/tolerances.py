"""The suite's float tolerances, each justified by the scale of what it compares.

float32 keeps a 24-bit significand: one ulp of 1.0 is 2**-23 (1.2e-7), and a sum of n terms
of magnitude <= 1 taken in another order (threads, batch shapes, BLAS kernels, processes)
lands at most about n * 2**-24 from the exact sum. Embeddings are float32 unit vectors of 64
entries; a wrong note, model or row moves their entries and scores by 1e-2 or more, so each
tolerance below is far under that and over the rounding it must absorb.
"""

EMBEDDING_DIM = 64
HALF_ULP = 2.0 ** -24

# The same note encoded by two code paths that batch it differently (batch size, padding,
# chunking, worker processes, a cluster): every layer's reductions reordered. Differences
# measured here stay under 1e-6; 1e-5 is 80 ulps of 1.0.
EMBEDDING_ATOL = 1e-5
# One computation repeated inside one batch (two rows of the same pixels or text): only the
# row's position differs, a few ulps.
SAME_BATCH_ATOL = 1e-6
# The norm of an L2-normalised float32 vector: a sum of 64 squares and a division.
NORM_ATOL = 1e-5
# An inner product of two unit vectors computed twice, each in its own order (FAISS, numpy,
# float64 brute force, a double read back from Delta): each is within 64 * 2**-24 of the
# exact value, so the two within twice that (7.6e-6).
SCORE_ATOL = 2 * EMBEDDING_DIM * HALF_ULP
