"""The paper's offline evaluation: Recall@K over held-out pairs, subsets, the report."""
