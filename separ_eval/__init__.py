"""separ-eval: how separable are the capabilities of a language model?"""

__version__ = "0.1.0"
