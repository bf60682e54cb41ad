"""gpttui: train GPT-2-class language models from a terminal UI or headless."""

__version__ = "0.1.0"
