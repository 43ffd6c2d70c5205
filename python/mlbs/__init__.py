"""mlbs: adaptive mini-batch selection for deep multi-label classification."""

__version__ = "0.1.0"
