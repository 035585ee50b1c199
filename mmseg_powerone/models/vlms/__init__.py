"""VLM architectures that no installable package provides (transformers
provides BLIP and LLaVA)."""
