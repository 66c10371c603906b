"""Settings declared once: dataclass fields that carry their flags (argparse is derived from
them), the types of their values, and the settings several jobs share. No Spark."""
