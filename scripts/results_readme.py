"""Write results/README.md from the results files in a folder: one leaderboard table per target, then one table
per scoring comparison found in `<folder>/compare/*/compare.json`.

    python scripts/results_readme.py results > results/README.md

Called by scripts/publish.sh; the numbers come from the files, never from this script.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from pytablewriter import MarkdownTableWriter

from separ_eval.engine.method import Method
from separ_eval.report.compare import comparison_cells
from separ_eval.report.leaderboard import leaderboard_rows
from separ_eval.report.render import render
from separ_eval.report.store import collect_results

TARGET_TITLES = {"code": "Forget code, retain prose", "code-reversed": "Forget prose, retain code"}


def main(directory: str) -> str:
    found, bad = collect_results(directory)
    if bad:
        raise SystemExit(f"invalid results files: {', '.join(str(p) for p, _ in bad)}")
    by_target = defaultdict(list)
    for row in leaderboard_rows(found):
        by_target[row["target"]].append(row)
    m = Method()
    lines = [
        "# Published results",
        "",
        "Written by `scripts/publish.sh` from the results files in this folder (`separ-eval leaderboard results",
        "--format md --target ...`); not edited by hand. Package defaults: "
        f"{m.steps} steps of {100 * m.ff_frac:g}% of the feed-forward neurons (`attn-` rows: of the attention "
        f"neurons), {m.collect_tokens} collection / {m.eval_tokens} evaluation tokens per corpus in windows of "
        f"{m.window} tokens (so each side reads about {-(-m.collect_tokens // m.window)} / "
        f"{-(-m.eval_tokens // m.window)} documents), blocks of {m.block_len}, float32, on a 2-core CPU (the "
        "`timing` in the files was measured while other runs shared the machine).",
        "",
        "A run's `±` is half its 95% bootstrap interval over evaluation documents (resampled jointly over steps);",
        "`random` is run under 3 seeds and shown as one band: mean `±` standard deviation across seeds, and the",
        "range. Forget / retain top1 are the unpruned model's and the last step's. A claim that one row beats",
        "another holds only where their intervals (or bands) do not overlap.",
        "",
    ]
    for target in sorted(by_target, key=lambda t: (t not in TARGET_TITLES, t)):
        lines += [f"## {TARGET_TITLES.get(target, target)} (`{target}`)", "", render(by_target[target], "md").rstrip(), ""]
    comparisons = sorted(Path(directory).glob("compare/*/compare.json"))
    if comparisons:
        lines += [
            "## Scorings compared (`separ-eval compare`)", "",
            "Each scoring pruned 5 x 5% of the FF neurons on the same evaluation documents as the others, so a",
            "difference is paired: its 95% interval resamples the same documents for both runs. `centred` runs with",
            "`--offset mean`. Collection cost is seconds per step of the scoring's own statistics pass, and its ratio",
            "to `abs` (`shared`: nothing beyond the statistics every scoring shares).", "",
        ]
        for path in comparisons:
            lines += [compare_section(json.loads(path.read_text()), path.parent.name), ""]
    return "\n".join(lines)


def compare_section(obj: dict, folder: str) -> str:
    """One comparison's table, best SA first."""
    columns = ("scoring", "sa", "diff_abs", "diff_best_classical", "collect_s", "x_abs")
    rows = [[row[k] for k in columns] for row in comparison_cells(obj)]
    writer = MarkdownTableWriter(
        headers=["Scoring", f"SA {obj['metric']}", f"ΔSA vs {obj['reference']} [95%]",
                 f"ΔSA vs best classical ({obj['best_classical']}) [95%]", "Collect s/step", "x abs"],
        value_matrix=rows, margin=1)
    title = f"### {obj['model']} ({obj['family']}), {obj['direction']}"
    return f"{title}\n\n`compare/{folder}/compare.json`, plot `compare/{folder}/compare.png`\n\n{writer.dumps().rstrip()}"


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "results"))
