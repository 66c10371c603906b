"""Batch inference: notes -> prepared inputs (threads or processes) -> the model, in
token-budget batches. What the Spark UDF calls; no Spark here. `settings.py` is torch-free,
so that drivers can check an encoder's settings without importing torch."""
