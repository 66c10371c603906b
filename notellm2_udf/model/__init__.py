"""The NoteLLM-2 model: configuration, modules, forward pass, prompt and processor,
checkpoints, and composing a new model from parts. No Spark here."""
