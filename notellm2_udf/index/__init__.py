"""Sharded FAISS indexes of note embeddings and the related-notes search over them.

params   index type and parameters by corpus size, memory per shard
layout   the index directory: shard files, id mapping, manifest, atomic publish
shards   train on a sample in one executor task, build the shards on executors
search   per-shard search and the exact top-k merge (numpy, FAISS)
loaded   shards loaded in a worker; groups of shards within a task's index budget
related  the related-notes search on executors, one group of shards at a time
exact    sampled recall against exact search

The corpus an index holds is defined once, in notellm2_udf.index.corpus. docs/INDEX.md has
the design and the figures behind the defaults.
"""
