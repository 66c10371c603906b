"""Batch inference: notes -> prepared inputs (threads or processes) -> the model, in
token-budget batches. What the Spark UDF calls; no Spark here."""

# Where an Encoder decodes and resizes JPEGs (Encoder(image_decode=...)); here, free of torch,
# so that drivers can check the choice without importing it.
IMAGE_DECODES = ("auto", "cpu", "gpu")
