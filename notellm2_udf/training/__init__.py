"""Contrastive fine-tuning of NoteLLM-2: loss, the petastorm data path, the per-process loop,
resumable training state and the training curve (see docs/TRAINING.md)."""
