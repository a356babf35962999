"""`separ-eval export`: saved masks baked into the model, written as an ordinary checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from .group import CONTEXT, cli, friendly_errors, stderr, stdout
from .options import DEFAULT_RUN, choices


@cli.command(context_settings=CONTEXT)
@click.option("--model", required=True, metavar="MODEL", help="The unpruned model the masks were computed on.")
@click.option("--masks", "masks_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A masks folder (masks.safetensors + masks.json), or a run folder (its last step).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the pruned checkpoint.")
@click.option("--overwrite", is_flag=True, help="Write into --out even if it is not empty.")
@click.option("--dtype", type=choices(("float32", "bfloat16", "float16")), default=DEFAULT_RUN.dtype, show_default=True)
@click.option("--revision", default=None, help="Hub revision of the model.")
@click.option("--trust-remote-code", is_flag=True, help="Allow a hub model's own Python code to run.")
@friendly_errors
def export(model, masks_path, out, overwrite, dtype, revision, trust_remote_code):
    """Bake masks into MODEL and save an ordinary checkpoint (loads with AutoModelForCausalLM)."""
    from ..run.export import export_pruned

    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise click.ClickException(f"{out_dir} is not empty: choose another --out, or pass --overwrite.")
    with stderr().status(f"Loading {model}..."):
        masks = export_pruned(model, masks_path, out_dir, dtype=dtype, revision=revision,
                              trust_remote_code=trust_remote_code)
    fractions = ", ".join(f"{u} {100 * masks.fraction(u):.1f}%" for u in masks.pruned)
    stdout().print(f"Exported {model} pruned ({fractions}) to {out_dir}", highlight=False)
