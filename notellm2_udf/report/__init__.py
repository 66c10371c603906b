"""The QA report of a day's related notes: collect (Spark) -> content (plain values) -> html."""
