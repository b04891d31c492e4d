"""audit: what is my model actually using?

Integrated Gradients attributions from a native engine, cross-checked against Captum, turned into
global rankings, findings, reports and an exit code.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
