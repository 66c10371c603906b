"""What executors keep locally: copies of models and index builds at URIs, and the one
per-worker cache of loaded objects. No Spark."""
