"""Runs: a model x target x method, prepared once and stepped through in a resumable run folder."""
