"""Results files: schema checks, naming, safe writes, collection, leaderboard, plot."""

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest

from separ_eval import io
from separ_eval.report.naming import run_name
from separ_eval.report.plots import plot_trajectory
from separ_eval.report.leaderboard import leaderboard_rows
from separ_eval.report.render import render
from separ_eval.report.schema import SCHEMA, ResultsError, parse, validate
from separ_eval.report.separability import summarize
from separ_eval.report.store import collect_results as collect
from separ_eval.report.store import load_results, write_results

HASH = "0123456789abcdef" * 4


def _scores(top1, loss):
    return {"top1": top1, "top10": 0.9, "skip50_top1": top1 / 2, "skip50_top10": 0.8, "loss": loss}


def make_results(forget_top1=(0.5, 0.25, 0.125), retain_top1=(0.5, 0.5, 0.25),
                 model_id="HuggingFaceTB/SmolLM2-135M", created="2026-01-01T00:00:00Z"):
    trajectory = [
        {"step": s, "pruned": {"ff": 0.05 * s, "attn": 0.0},
         "forget": _scores(f, 2.0 + s), "retain": _scores(r, 2.0)}
        for s, (f, r) in enumerate(zip(forget_top1, retain_top1))
    ]
    return {
        "schema": SCHEMA,
        "model": {"id": model_id, "revision": "main", "family": "llama",
                  "n_params": 134515008, "dtype": "float32"},
        "target": {"name": "code", "forget": "code", "retain": "prose", "reversed": False},
        "method": {"ff_frac": 0.05, "attn_frac": 0.0, "attn_unit": "neuron", "steps": 2,
                   "scoring": {"ff": "abs", "attn": "abs"}, "offset": "zero",
                   "recollect": True, "collect_tokens": 1000, "eval_tokens": 1000, "seed": 0},
        "data": {"forget": {"source": "corpora/code.jsonl.gz", "sha256": HASH},
                 "retain": {"source": "corpora/prose.jsonl.gz", "sha256": HASH}},
        "trajectory": trajectory,
        "summary": summarize(trajectory),
        "environment": {"separ_eval": "0.1.0", "device": "cpu", "created": created},
        "timing": {"total_s": 1.0, "collect_s": 0.5, "eval_s": 0.5},
    }


@pytest.fixture
def valid():
    return make_results()


def test_minimal_results_validate(valid):
    assert validate(valid) == []


def test_missing_key_is_named(valid):
    del valid["model"]["n_params"]
    del valid["data"]
    assert validate(valid) == ["model.n_params: missing", "data: missing"]


def test_wrong_schema_string(valid):
    valid["schema"] = "separ-eval/results/v2"
    assert validate(valid) == ["schema: expected 'separ-eval/results/v1', got 'separ-eval/results/v2'"]


def test_wrong_types_are_reported(valid):
    valid["model"]["n_params"] = "135M"
    valid["target"]["reversed"] = "no"
    valid["data"]["retain"]["sha256"] = "abc"
    problems = validate(valid)
    assert len(problems) == 3
    assert problems[0].startswith("model.n_params: expected an integer, got str")
    assert problems[1].startswith("target.reversed: expected true or false")
    assert problems[2].startswith("data.retain.sha256: expected 64 lowercase hex digits")


def test_tampered_summary_is_flagged(valid):
    valid["summary"]["top1"]["sa"] += 1e-6
    [problem] = validate(valid)
    assert problem.startswith("summary.top1.sa: 0.500001")
    assert "recomputed from the trajectory" in problem


def test_summary_rounding_within_tolerance_is_accepted(valid):
    valid["summary"]["top1"]["sa"] += 1e-12
    assert validate(valid) == []


def test_missing_summary_metric(valid):
    del valid["summary"]["skip50_top10"]
    assert validate(valid) == ["summary.skip50_top10: missing"]


def test_non_monotone_steps(valid):
    valid["trajectory"][2]["step"] = 1
    assert validate(valid) == ["trajectory[2].step: steps must increase: 1 after 1"]


def test_step_zero_must_come_first(valid):
    valid["trajectory"].reverse()
    problems = validate(valid)
    assert "trajectory[0].step: the first record must be step 0, got 2" in problems


def test_bad_trajectory_values(valid):
    valid["trajectory"][1]["pruned"]["ff"] = 1.5
    valid["trajectory"][2]["forget"]["top10"] = "0.9"
    problems = validate(valid)
    assert problems == [
        "trajectory[1].pruned.ff: expected a number <= 1.0, got float (1.5)",
        "trajectory[2].forget.top10: expected a number, got str ('0.9')",
    ]


def test_empty_trajectory_and_non_object():
    obj = make_results()
    obj["trajectory"] = []
    assert validate(obj) == ["trajectory: empty: needs at least step 0"]
    assert validate([1, 2]) == ["results must be a JSON object, got list"]


def test_load_results_reports_invalid_json_and_schema(tmp_path, valid):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ResultsError, match="invalid JSON") as err:
        load_results(broken)
    assert err.value.path == broken
    valid["schema"] = "other"
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(valid))
    with pytest.raises(ResultsError, match="schema: expected"):
        load_results(stale)


def test_run_name_is_readable_and_distinguishes_settings(valid):
    method = valid["method"]
    assert run_name("smollm2-135m", "code", False, method) == "smollm2-135m__code__ff-abs-0.05x2"
    assert run_name("HuggingFaceTB/SmolLM2-135M", "code", True, method) == \
        "huggingfacetb--smollm2-135m__code-reversed__ff-abs-0.05x2"
    method.update(attn_frac=0.01, attn_unit="head", scoring={"ff": "freq", "attn": "random"},
                  offset="mean", recollect=False, seed=3)
    assert run_name("m", "code", False, method) == \
        "m__code__ff-freq-0.05x2+attn-head-random-0.01x2-mean-norecollect-seed3"


def test_write_results_round_trips_without_temp_files(tmp_path, valid):
    path = write_results(valid, tmp_path)
    assert path.name == "huggingfacetb--smollm2-135m__code__ff-abs-0.05x2.json"
    assert load_results(path).to_dict() == valid
    assert os.listdir(tmp_path) == [path.name]


def test_write_results_failure_leaves_old_file_intact(tmp_path, valid, monkeypatch):
    path = write_results(valid, tmp_path)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "fsync", disk_full)
    valid["timing"]["total_s"] = 99.0
    with pytest.raises(OSError, match="disk full"):
        write_results(valid, tmp_path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]


def test_write_results_overwrites_the_same_run(tmp_path, valid):
    write_results(valid, tmp_path)
    rerun = make_results(forget_top1=(0.5, 0.125, 0.0625))
    path = write_results(rerun, tmp_path)
    assert load_results(path).trajectory[2].forget.top1 == 0.0625


def test_write_results_refuses_a_different_run_with_the_same_name(tmp_path, valid):
    path = write_results(valid, tmp_path)
    other = copy.deepcopy(valid)
    other["method"]["collect_tokens"] = 5000  # not in the file name, still another run
    with pytest.raises(FileExistsError, match="different run"):
        write_results(other, tmp_path)
    assert load_results(path).method.collect_tokens == 1000


def test_write_results_refuses_invalid_objects(tmp_path, valid):
    valid["summary"]["top1"]["mdd"] = 0.9
    with pytest.raises(ResultsError, match="summary.top1.mdd"):
        write_results(valid, tmp_path)
    assert os.listdir(tmp_path) == []


def test_collect_separates_bad_and_foreign_files(tmp_path, valid):
    good = write_results(valid, tmp_path)
    (tmp_path / "broken.json").write_text('{"schema": ')
    (tmp_path / "package.json").write_text('{"name": "left-pad"}')
    (tmp_path / "notes.txt").write_text("not json, not looked at")
    results, errors = collect(tmp_path)
    assert [(path, obj.to_dict()) for path, obj in results] == [(good, valid)]
    assert [path.name for path, _ in errors] == ["broken.json", "package.json"]
    assert "invalid JSON" in errors[0][1]
    assert "schema: expected 'separ-eval/results/v1', got None" in errors[1][1]


def _two_runs():
    # top1 SA: first 0.5 (see test_separability), second 0.75 (retain never moves:
    # polygon (0,0) (0,0.5) (0,0.75) (1,1), cross term -0.75)
    weaker = make_results(model_id="org/<b>weak</b>")
    stronger = make_results(model_id="org/strong", retain_top1=(0.5, 0.5, 0.5))
    return weaker, stronger


def test_leaderboard_rows_sorted_by_sa_with_base_scores():
    weaker, stronger = _two_runs()
    rows = leaderboard_rows([parse(weaker), parse(stronger)])
    assert [row["model"] for row in rows] == ["org/strong", "org/<b>weak</b>"]
    assert {k: v for k, v in rows[0].items() if not k.endswith("_ci")} == pytest.approx({
        "model": "org/strong", "family": "llama", "n_params": 134515008, "target": "code",
        "method": "ff-abs-0.05x2", "seeds": 1, "forget_top1": 0.5, "forget_top1_end": 0.125,
        "retain_top1": 0.5, "retain_top1_end": 0.5,
        "sa_top1": 0.75, "mdd_top1": 0.75, "f_at_r5_top1": 0.75,
        "sa_skip50_top1": 0.75, "mdd_skip50_top1": 0.75, "f_at_r5_skip50_top1": 0.75,
    })
    assert rows[1]["sa_top1"] == pytest.approx(0.5)
    assert rows[1]["f_at_r5_top1"] == pytest.approx(0.525)


def test_leaderboard_keeps_the_latest_of_duplicate_runs(tmp_path):
    old = make_results(created="2026-01-01T00:00:00Z")
    new = make_results(retain_top1=(0.5, 0.5, 0.5), created="2026-02-01T00:00:00Z")
    rows = leaderboard_rows([(tmp_path / "a.json", parse(new)), (tmp_path / "b.json", parse(old))])
    assert len(rows) == 1
    assert rows[0]["sa_top1"] == pytest.approx(0.75)


def test_seeds_of_one_method_are_one_band_row():
    seeds = []
    for seed, retain_end in ((0, 0.5), (1, 0.25), (2, 0.375)):
        obj = make_results(retain_top1=(0.5, 0.5, retain_end))
        obj["method"].update(scoring={"ff": "random", "attn": "abs"}, seed=seed)
        seeds.append(parse(obj))
    other = make_results()  # abs: another method, its own row
    rows = leaderboard_rows([*seeds, parse(other)])
    assert [(r["method"], r["seeds"]) for r in rows] == [("ff-abs-0.05x2", 1), ("ff-random-0.05x2", 3)] or \
        [(r["method"], r["seeds"]) for r in rows] == [("ff-random-0.05x2", 3), ("ff-abs-0.05x2", 1)]
    band = next(r for r in rows if r["seeds"] == 3)
    areas = [s.summary["top1"].sa for s in seeds]
    assert band["sa_top1"] == pytest.approx(sum(areas) / 3)
    assert band["sa_top1_sd"] == pytest.approx(float(np.std(areas, ddof=1)))
    assert band["sa_top1_range"] == [min(areas), max(areas)]
    assert "± " in render(rows, "md") and " sd (" in render(rows, "md")


def test_render_formats_contain_the_numbers():
    rows = leaderboard_rows([parse(obj) for obj in _two_runs()])
    md = render(rows, "md")
    lines = md.splitlines()
    assert lines[0].split("|")[1].strip() == "Model" and "SA top1" in lines[0] and "Seeds" in lines[0]
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert cells[:9] == ["org/strong", "llama", "135M", "code", "ff-abs-0.05x2", "1", "0.500 → 0.125",
                         "0.500 → 0.500", "0.750"]
    assert "org/&lt;b&gt;weak&lt;/b&gt;" in md

    from separ_eval.report.page import render_page

    page = render_page([(Path(f"{i}.json"), parse(obj)) for i, obj in enumerate(_two_runs())])
    assert page.startswith("<!DOCTYPE html>") and page.count('<tr class="run"') == 2
    assert 'data-value="0.525' in page and ">0.750</td>" in page
    assert "org/&lt;b&gt;weak&lt;/b&gt;" in page and "<b>weak" not in page
    assert page.count('<path class="curve"') == 2  # one chart (target code, ff-abs), one curve per model

    assert json.loads(render(rows, "json")) == json.loads(json.dumps(rows))

    from rich.console import Console

    console = Console(record=True, width=250)
    console.print(render(rows, "table"))
    text = console.export_text()
    assert "0.750" in text and "org/<b>weak</b>" in text

    with pytest.raises(ValueError, match="unknown format 'csv'"):
        render(rows, "csv")


def test_a_run_with_intervals_shows_them():
    forget, retain = hand_case()
    rows = leaderboard_rows([parse(measured_results(forget, retain))])
    md = render(rows, "md")
    assert "0.000 ± 0.875" in md  # SA 0, interval [-1, 0.75]: half-width 0.875 (4000 vs 1000 draws: same extremes)


def test_plot_trajectory_writes_a_png(tmp_path, valid):
    path = plot_trajectory(parse(valid), tmp_path / "plots" / "run.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


# ---------------------------------------------------------------- the JSON Schema export

SCHEMA_FILE = Path(__file__).parent.parent / "results" / "schema" / "results-v1.schema.json"


def test_committed_json_schema_is_the_models_export():
    """results/schema/ holds what `python -m separ_eval.report.schema` prints: regenerate it when the model changes."""
    from separ_eval.report.schema import json_schema

    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(json.dumps(json_schema()))


def test_published_results_validate_against_the_committed_json_schema(valid):
    """Other tools can check a results file with the JSON Schema alone (the cross-field rules need separ-eval)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_FILE.read_text())
    published = sorted((SCHEMA_FILE.parent.parent).glob("*.json"))
    assert published
    for path in published:
        jsonschema.validate(json.loads(path.read_text()), schema)
    jsonschema.validate(valid, schema)
    valid["trajectory"][1]["forget"]["top1"] = "0.5"
    with pytest.raises(jsonschema.ValidationError, match="'0.5' is not of type 'number'"):
        jsonschema.validate(valid, schema)
    assert validate(valid) == ["trajectory[1].forget.top1: expected a number, got str ('0.5')"]


# ---------------------------------------------------------------- intervals


def _doc(n, top1):
    """One document's counts: n targets, top1 of them right; top10 and skip50 copy top1 to keep it small."""
    return [n, top1, top1, n, top1, top1, 2.0 * n]


def hand_case():
    """Two documents a side, two steps. Forget drop of each resample of (A, B): (A, A) 0.75, (A, B) 0.5,
    (B, B) 0; retain drop of (C, D): (C, C) 0, (C, D) 0.5, (D, D) 1. SA of a one-step curve is dF - dR."""
    forget = [[_doc(10, 8), _doc(10, 4)], [_doc(10, 2), _doc(10, 4)]]  # steps x documents x fields
    retain = [[_doc(10, 5), _doc(10, 5)], [_doc(10, 5), _doc(10, 0)]]
    return forget, retain


def test_bootstrap_matches_a_hand_computed_case():
    from separ_eval.report import intervals

    forget, retain = hand_case()
    bounds, stderr = intervals.intervals(forget, retain, iterations=4000, seed=7)
    # Each side's three resamples have probabilities 1/4, 1/2, 1/4: the extreme SAs, 0 - 1 and 0.75 - 0,
    # each have probability 1/16 > 2.5%, so the 95% interval is exactly [-1, 0.75].
    assert bounds["top1"]["sa_ci"] == [-1.0, 0.75]
    assert bounds["top1"]["mdd_ci"] == [0.0, 0.75]  # MDD = max(0, dF - dR)
    # forget top1 at step 1 is 0.2, 0.3, 0.4 with probabilities 1/4, 1/2, 1/4: sd sqrt(0.005)
    assert stderr[1]["forget"]["top1"] == pytest.approx(0.005 ** 0.5, rel=0.05)
    assert stderr[0]["retain"]["top1"] == 0.0  # both retain documents score 0.5 at step 0
    again, _ = intervals.intervals(forget, retain, iterations=4000, seed=7)
    assert again == bounds  # seeded: reproducible


def test_vectorized_areas_equal_the_shoelace_of_separability():
    from separ_eval.report import intervals
    from separ_eval.report.separability import separability_area

    rng = np.random.default_rng(0)
    d_retain, d_forget = rng.uniform(-0.2, 1, (50, 6)), rng.uniform(-0.2, 1, (50, 6))
    d_retain[:, 0] = d_forget[:, 0] = 0
    expected = [separability_area(r.tolist(), f.tolist()) for r, f in zip(d_retain, d_forget)]
    assert intervals._areas(d_retain, d_forget) == pytest.approx(expected, abs=1e-12)


def measured_results(forget, retain) -> dict:
    """A valid results object whose trajectory, summary, errors and samples come from per-document counts."""
    from separ_eval.report.assemble import measured
    from separ_eval.report.intervals import COUNT_FIELDS

    def side_metrics(rows):
        total = dict(zip(COUNT_FIELDS, np.asarray(rows).sum(axis=0)))
        return {"top1": total["top1"] / total["n"], "top10": total["top10"] / total["n"],
                "skip50_top1": total["skip_top1"] / total["skip_n"], "skip50_top10": total["skip_top10"] / total["skip_n"],
                "loss": total["loss_sum"] / total["n"]}

    records = [{"step": s, "pruned": {"ff": 0.05 * s, "attn": 0.0}, "forget": side_metrics(f), "retain": side_metrics(r),
                "counts": {"forget": f, "retain": r}} for s, (f, r) in enumerate(zip(forget, retain))]
    obj = make_results()
    obj.update(measured(records, {"forget": [f"f{i}" for i in range(len(forget[0]))],
                                  "retain": [f"r{i}" for i in range(len(retain[0]))]}))
    return obj


def test_results_with_samples_validate_and_altered_samples_do_not():
    forget, retain = hand_case()
    obj = measured_results(forget, retain)
    assert validate(obj) == [] and obj["summary"]["top1"]["sa_ci"][0] <= obj["summary"]["top1"]["sa"]

    altered = copy.deepcopy(obj)
    altered["samples"]["forget"]["counts"][1][0][1] += 1  # a document's count no longer adds up to the trajectory
    assert validate(altered) == [
        "trajectory[1].forget.top1: 0.3 does not match 0.35 recomputed from samples.forget.counts"]

    moved = copy.deepcopy(obj)  # the same totals, spread differently over documents: other intervals
    moved["samples"]["retain"]["counts"][1][0][1] -= 2
    moved["samples"]["retain"]["counts"][1][1][1] += 2
    problems = validate(moved)
    assert problems and all("recomputed from the samples" in p for p in problems)
    assert any(p.startswith("summary.top1.sa_ci") for p in problems)

    widened = copy.deepcopy(obj)
    widened["summary"]["top1"]["sa_ci"][1] += 0.01
    assert [p.split(":")[0] for p in validate(widened)] == ["summary.top1.sa_ci"]

    unbacked = copy.deepcopy(obj)
    del unbacked["samples"]
    assert validate(unbacked) == ["summary: intervals are given but no samples to recompute them from"]
