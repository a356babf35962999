"""The pruning engine: maps a model's units, collects statistics, scores, selects, bakes, and measures.

It knows nothing of lm-eval, the CLI, run folders or results files; everything above stands on it.
"""
