"""Targets: the package's YAML, user targets from an include path, and the errors for bad input."""

import pytest
from click.testing import CliRunner

from separ_eval.cli.lm_eval import targets_command
from separ_eval.targets import Side, TargetError, available_targets, load_target

USER_TARGET = """\
target: legal
description: Forget legal text, retain prose.
forget: {corpus: /data/legal.jsonl, tasks: [my_legal_task]}
retain: {corpus: prose, tasks: separ_general}
"""


def test_package_targets():
    code = load_target("code")
    assert code.name == "code"
    assert code.forget == Side("code", ["separ_code"])
    assert code.retain == Side("prose", ["separ_general"])
    assert not code.is_reversed
    assert code.as_dict() == {"name": "code", "forget": "code", "retain": "prose", "reversed": False}
    assert {"code", "prose", "github-code"} <= set(available_targets())
    hub = load_target("github-code")
    assert (hub.forget.corpus, hub.retain.corpus) == ("github-code", "pile-codeless")
    assert (hub.forget.tasks, hub.retain.tasks) == (["separ_code_hub"], ["separ_general_hub"])


def test_prose_is_code_swapped_and_has_alias():
    prose = load_target("prose")
    assert load_target("general") == prose
    assert (prose.forget, prose.retain) == (load_target("code").retain, load_target("code").forget)


def test_reversed_swaps_sides_keeps_name():
    code = load_target("code")
    flipped = code.reversed()
    assert flipped.name == "code" and flipped.is_reversed
    assert (flipped.forget, flipped.retain) == (code.retain, code.forget)
    assert flipped.as_dict()["reversed"] is True
    assert flipped.reversed() == code


def test_package_targets_name_existing_tasks():
    from separ_eval.lm_eval_ext.catalog import task_rows

    names = {row["name"] for row in task_rows()}
    for target in available_targets().values():
        assert set(target.forget.tasks + target.retain.tasks) <= names, target.name


def test_user_target_from_include_path(tmp_path):
    (tmp_path / "legal.yaml").write_text(USER_TARGET)
    (tmp_path / "some_task.yaml").write_text("task: not_a_target\nclass: !function utils.Thing\n")
    target = load_target("legal", include_paths=[tmp_path])
    assert target.forget == Side("/data/legal.jsonl", ["my_legal_task"])
    assert target.retain.tasks == ["separ_general"]
    assert target.source == str(tmp_path / "legal.yaml")
    assert "legal" in available_targets([str(tmp_path)]) and "code" in available_targets([str(tmp_path)])


def test_unknown_target_lists_the_available_ones():
    with pytest.raises(TargetError) as error:
        load_target("cod")
    message = str(error.value)
    assert "Unknown target 'cod'" in message and "Did you mean 'code'" in message
    assert "code, github-code, prose" in message


@pytest.mark.parametrize("missing", ["forget", "retain"])
def test_target_missing_a_side_names_file_and_key(tmp_path, missing):
    lines = [line for line in USER_TARGET.splitlines() if not line.startswith(missing)]
    path = tmp_path / "broken.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TargetError) as error:
        load_target("legal", include_paths=[tmp_path])
    assert str(path) in str(error.value) and f"`{missing}`" in str(error.value)


def test_target_side_without_corpus(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(USER_TARGET.replace("corpus: /data/legal.jsonl, ", ""))
    with pytest.raises(TargetError, match=r"forget.corpus"):
        load_target("legal", include_paths=[tmp_path])


def test_targets_command_lists_package_and_user_targets(tmp_path):
    (tmp_path / "legal.yaml").write_text(USER_TARGET)
    result = CliRunner(env={"COLUMNS": "250"}).invoke(targets_command, ["--include-path", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("code", "prose (general)", "github-code", "legal", "separ_general_hub"):
        assert name in result.output
