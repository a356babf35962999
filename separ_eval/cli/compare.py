"""`separ-eval compare`: several scorings on one model and target, under the same data, in one table."""

from __future__ import annotations

import click

from .display import RunDisplay
from .group import CONTEXT, DEFAULT_MODEL, cli, friendly_errors, stderr, wide_console
from .options import build_config, method_options

DEFAULT_SCORINGS = "abs,std,rms,sqrt,attrib,wanda-diff,centred,random"


@cli.command(context_settings=CONTEXT)
@click.option("--model", default=DEFAULT_MODEL, show_default=True, metavar="MODEL",
              help="Hub id, local checkpoint folder, or an embedded alias.")
@click.option("--scorings", default=DEFAULT_SCORINGS, show_default=True, metavar="A,B,...",
              help="Scorings to compare (the first one is the reference when abs is not among them). centred runs "
                   "with --offset mean, as it is meant to; --seeds gives random one run per seed.")
@method_options
@friendly_errors
def compare(model, scorings, **options):
    """Compare scorings on one model and target: the same evaluation documents and budgets for all, step 0
    and the unpruned model's statistics computed once. Writes each scoring's results file, compare.json
    (SA with intervals, paired differences to abs and to the best classical scoring, collection cost) and
    compare.png into OUTPUT/compare/<model>__<target>/. Re-running resumes.
    """
    from ..report.compare import comparison_table
    from ..run.compare import compare as run_comparison

    seeds = options.get("seeds") or ()
    config = build_config(model, options)
    names = [s.strip() for s in scorings.split(",") if s.strip()]
    err = stderr()

    def execute(run):
        with RunDisplay(run, err) as display:
            run.progress = display
            return run.execute()

    obj, folder = run_comparison(config, names, seeds, log=lambda text: err.print(text, highlight=False), execute=execute)
    wide_console().print(comparison_table(obj))
    err.print(f"Comparison: {folder / 'compare.json'}", highlight=False, soft_wrap=True)
