"""Separability metrics against hand-computed trajectories."""

import pytest

from separ_eval.report.separability import (
    forget_drop_at_retain_drop,
    max_differential_drop,
    relative_drops,
    separability_area,
    summarize,
    summarize_tasks,
)


def test_relative_drops_are_one_minus_ratio_to_step_0():
    assert relative_drops([0.5, 0.4, 0.25, 0.0]) == pytest.approx([0.0, 0.2, 0.5, 1.0])


def test_relative_drops_reject_zero_base():
    with pytest.raises(ValueError, match="step-0 value is 0"):
        relative_drops([0.0, 0.1])


def test_perfect_separation_has_area_one():
    # forget collapses while retain is untouched, then retain goes too
    assert separability_area([0.0, 0.0, 1.0], [0.0, 1.0, 1.0]) == pytest.approx(1.0)


def test_equal_drops_have_area_zero():
    drops = [0.0, 0.3, 0.7, 1.0]
    assert separability_area(drops, drops) == pytest.approx(0.0)


def test_retain_hurt_more_is_negative():
    assert separability_area([0.0, 1.0, 1.0], [0.0, 0.0, 1.0]) == pytest.approx(-1.0)
    # triangle (0,0), (0.5,0.1), (1,1) below the diagonal: 2 x 0.2
    assert separability_area([0.0, 0.5], [0.0, 0.1]) == pytest.approx(-0.4)


def test_non_monotone_trajectory_uses_signed_shoelace():
    # Polygon (0,0) (0.2,0.1) (0.1,0.5) (0.6,0.5) (0.9,0.8) (1,1): cross terms
    # 0.09 - 0.25 + 0.03 + 0.10 = -0.03, so SA = 0.03 (dips below, crosses, dips again).
    d_retain = [0.0, 0.2, 0.1, 0.6, 0.9]
    d_forget = [0.0, 0.1, 0.5, 0.5, 0.8]
    assert separability_area(d_retain, d_forget) == pytest.approx(0.03)
    assert max_differential_drop(d_retain, d_forget) == pytest.approx(0.4)
    # dR first reaches 0.05 between steps 0 and 1: a quarter of the way, dF 0.025
    assert forget_drop_at_retain_drop(d_retain, d_forget) == pytest.approx(0.025)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        separability_area([0.0, 0.1], [0.0])


def test_mdd_is_zero_when_retain_always_drops_more():
    assert max_differential_drop([0.0, 0.3, 0.6], [0.0, 0.1, 0.2]) == 0.0


def test_mdd_takes_the_largest_gap():
    assert max_differential_drop([0.0, 0.1, 0.3], [0.0, 0.5, 0.6]) == pytest.approx(0.4)


def test_f_at_r5_interpolates_between_the_steps_around_the_threshold():
    # dR crosses 0.05 halfway from 0.02 to 0.08, so dF is halfway from 0.3 to 0.6
    d_retain = [0.0, 0.02, 0.08, 0.2]
    d_forget = [0.0, 0.3, 0.6, 0.9]
    assert forget_drop_at_retain_drop(d_retain, d_forget) == pytest.approx(0.45)


def test_f_at_r5_exactly_at_threshold_takes_that_step():
    assert forget_drop_at_retain_drop([0.0, 0.05, 0.5], [0.0, 0.4, 0.9]) == pytest.approx(0.4)


def test_f_at_r5_never_reached_gives_final_forget_drop():
    assert forget_drop_at_retain_drop([0.0, 0.01, 0.04], [0.0, 0.5, 0.7]) == pytest.approx(0.7)


def test_f_at_r5_other_threshold():
    # dR reaches 0.1 at 1/4 of the way from 0.0 to 0.4: dF 0.2 + 0.25 x 0.4
    assert forget_drop_at_retain_drop([0.0, 0.0, 0.4], [0.0, 0.2, 0.6], threshold=0.1) == pytest.approx(0.3)


def _scores(top1):
    return {"top1": top1, "top10": 0.9, "skip50_top1": top1 / 2, "skip50_top10": 0.8, "loss": 2.0}


def _record(step, forget_top1, retain_top1):
    return {"step": step, "pruned": {"ff": 0.05 * step, "attn": 0.0},
            "forget": _scores(forget_top1), "retain": _scores(retain_top1)}


def test_summarize_a_small_trajectory():
    # dF = 0, 0.5, 0.75 and dR = 0, 0, 0.5 on top1 (and on skip50_top1, halved values).
    # Polygon (0,0) (0,0.5) (0.5,0.75) (1,1): cross terms -0.25 - 0.25, SA 0.5.
    # F@R5: dR hits 0.05 a tenth of the way from step 1 to 2: 0.5 + 0.1 x 0.25.
    trajectory = [_record(0, 0.5, 0.5), _record(1, 0.25, 0.5), _record(2, 0.125, 0.25)]
    summary = summarize(trajectory)
    assert set(summary) == {"top1", "top10", "skip50_top1", "skip50_top10"}
    for metric in ("top1", "skip50_top1"):
        assert summary[metric] == pytest.approx({"sa": 0.5, "mdd": 0.5, "f_at_r5": 0.525})
    # constant top10 on both sides: nothing moves
    assert summary["top10"] == pytest.approx({"sa": 0.0, "mdd": 0.0, "f_at_r5": 0.0})


def test_summarize_names_a_missing_metric():
    trajectory = [_record(0, 0.5, 0.5)]
    del trajectory[0]["retain"]["top10"]
    with pytest.raises(ValueError, match="top10"):
        summarize(trajectory)


def test_summarize_tasks_pairs_forget_task_with_mean_retain_of_same_metric():
    steps = [
        {"forget": {"mbpp": {"acc,none": 0.4, "acc_stderr,none": 0.02, "pass@1,none": 0.3,
                             "word_perplexity,none": 10.0},
                    "humaneval": {"acc,none": 0.2}},
         "retain": {"arc": {"acc,none": 0.5, "word_perplexity,none": 12.0},
                    "piqa": {"acc,none": 0.7}}},
        {"forget": {"mbpp": {"acc,none": 0.2, "acc_stderr,none": 0.02, "pass@1,none": 0.1,
                             "word_perplexity,none": 30.0}},
         "retain": {"arc": {"acc,none": 0.5, "word_perplexity,none": 13.0},
                    "piqa": {"acc,none": 0.3}}},
    ]
    trajectory = [{"step": s, "tasks": tasks} for s, tasks in enumerate(steps)]
    # retain mean acc 0.6 -> 0.4: dR 1/3; mbpp acc dF 0.5.
    # Triangle (0,0) (1/3,1/2) (1,1): SA = -(1/3 - 1/2) = 1/6; F@R5 = 0.15 x 0.5.
    # pass@1 has no retain counterpart, stderr/perplexity are not scores,
    # humaneval is missing at step 1: all skipped.
    assert summarize_tasks(trajectory) == {
        "mbpp/acc,none": pytest.approx({"sa": 1 / 6, "mdd": 1 / 6, "f_at_r5": 0.075}),
    }


def test_summarize_tasks_without_tasks_is_empty():
    assert summarize_tasks([_record(0, 0.5, 0.5), _record(1, 0.25, 0.5)]) == {}
