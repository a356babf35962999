"""separ-eval inside lm-evaluation-harness: the `separ` model, the `token_metrics` request, the task runner.

`import separ_eval.lm_eval_ext` registers the model and the request type, as lm-eval's
plugins would (lm-eval 0.4.13 has no plugin entry points).
"""

from . import model, tasks  # noqa: F401  (registration on import)
