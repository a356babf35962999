"""The one error type users see: a failure caused by their input or environment, whose message says what to do.

Every user-facing error of the package derives from `SeparEvalError`; the command line prints
it as one line (SEPAR_EVAL_DEBUG=1 shows the traceback). Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class SeparEvalError(Exception):
    """Bad input or environment (model, corpus, target, settings, files); the message names the fix."""


class OutputError(SeparEvalError, OSError):
    """An output folder that cannot be created or written to."""
