"""What the tests share besides fixtures: processes, sample notes, tokenizers, the Airflow
environment (conftests hold fixtures only and are never imported)."""
