"""Embedding notes on Spark: the encoding options, the executor function around `Encoder`,
one day written to the tables, and which days of a window a model version has embedded."""
