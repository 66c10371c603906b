"""NoteLLM-2 batch: the model, its batch encoder and the Spark pieces around it.

Importing the package is cheap: torch and transformers load only when `Encoder` (or a model
module) is first used, so Spark drivers and Airflow never pay for them.
"""

__version__ = "0.1.0"

__all__ = ["Encoder"]


def __getattr__(name: str):
    if name == "Encoder":
        from notellm2_udf.inference.encoder import Encoder

        return Encoder
    raise AttributeError(f"module 'notellm2_udf' has no attribute {name!r}")
