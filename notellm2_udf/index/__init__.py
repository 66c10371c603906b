"""Sharded FAISS indexes of note embeddings and the related-notes search over them.

corpus   which embeddings make a day's corpus (window, latest row per note, one model)
params   index type and parameters by corpus size, memory per shard
layout   the index directory: shard files, id mapping, manifest, atomic publish
shards   train on a sample, build the shards on executors
search   per-shard search and the exact top-k merge, on executors
evaluate sampled recall against exact search
threads  FAISS threads = the task's CPUs

docs/INDEX.md has the design and the figures behind the defaults.
"""
