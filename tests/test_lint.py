"""`promptci lint`: every problem, each as file:line:col, exit 1 on errors."""

from __future__ import annotations

import json

from promptci.errors import ExitCode

from .conftest import REPO_ROOT, Repo


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line]


def test_clean_project_passes(repo: Repo) -> None:
    result = repo.run("lint")
    assert result.code == 0 and result.out == ""
    assert "2 files, 0 errors, 0 warnings" in result.err


def test_every_problem_is_reported_with_its_position(repo: Repo) -> None:
    repo.write(
        "prompts/bad.yaml",
        "name: bad\n"
        "temprature: 0.2\n"  # 2: unknown key
        "messages:\n"
        "  - role: sytem\n"  # 4: bad role
        "    content: Hello {{ user }}\n"  # 5: undeclared variable
        "  - role: user\n"
        "    content: |\n"
        "      First line\n"
        "      {% if flag %}unclosed\n"  # 9: jinja syntax, reported at end of template
        "variables:\n"
        "  spare: string\n",  # unused, but a template that does not parse may use it: no warning
    )
    repo.write("prompts/broken.yaml", "name: broken\ntemplate: [unclosed\n")
    repo.write("prompts/dupkey.yaml", "name: dupkey\ntemplate: a\ntemplate: b\n")
    result = repo.run("lint")
    assert result.code == ExitCode.FAILED
    assert _lines(result.out) == [
        "prompts/bad.yaml:2:1: error: unknown key 'temprature' [schema]",
        "prompts/bad.yaml:4:5: error: messages.0.role: Input should be 'system', 'user', 'assistant' or 'tool' [schema]",
        "prompts/bad.yaml:5:14: error: variable 'user' is used but not declared under 'variables' [undeclared-variable]",
        "prompts/bad.yaml:9:1: error: template syntax: Unexpected end of template. Jinja was looking for the"
        " following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'. [jinja]",
        "prompts/broken.yaml:3:1: error: invalid YAML: did not find expected ',' or ']' [yaml]",
        "prompts/dupkey.yaml:3:1: error: duplicate key 'template' [yaml]",
    ]


def test_duplicate_names_point_at_the_second_file(repo: Repo) -> None:
    repo.write("prompts/zz.yaml", "# copy\nname: sentiment\ntemplate: hi\n")
    assert _lines(repo.run("lint").out) == [
        "prompts/zz.yaml:2:1: error: prompt name 'sentiment' is also declared in prompts/sentiment.yaml [duplicate-name]"
    ]


def test_yaml_booleans_get_a_hint(repo: Repo) -> None:
    repo.write("prompts/yn.yaml", "name: yn\ntemplate: hi\ntags: [yes, no]\n")
    out = repo.run("lint").out
    assert "prompts/yn.yaml:3:8: error: tags.0: Input should be a valid string; YAML reads unquoted" in out


def test_a_suite_extractor_needs_the_answer_placeholder(repo: Repo) -> None:
    suite = (repo.path / "evals/sentiment.yaml").read_text()
    good = suite + "extractor: {phrase: 'So the answer is', answer_format: ' {answer}.'}\n"
    repo.write("evals/sentiment.yaml", good)
    assert repo.run("lint").code == 0
    repo.write("evals/sentiment.yaml", suite + "extractor:\n  phrase: So the answer is\n  answer_format: ' no'\n")
    result = repo.run("lint")
    line = suite.count("\n") + 3
    assert result.code == 1
    assert (
        f"evals/sentiment.yaml:{line}:3: error: extractor.answer_format: answer_format must contain {{answer}}"
        in result.out
    )


def test_warnings_fail_only_with_strict(repo: Repo) -> None:
    repo.write("prompts/w.yaml", "name: w\ntemplate: hi\nvariables: {unused: string}\n")
    assert repo.run("lint").code == 0
    assert repo.run("lint", "--strict").code == ExitCode.FAILED


def test_suites_are_validated_against_prompts(repo: Repo) -> None:
    repo.write(
        "evals/bad.yaml",
        "prompts: [sentiment, missing]\n"
        "dataset:\n"
        "  path: data/none.jsonl\n"
        "  vars: {reviw: text}\n"
        "scorers:\n"
        "  - type: choice\n"
        "  - {type: fuzzy}\n",
    )
    out = _lines(repo.run("lint").out)
    assert out == [
        "evals/bad.yaml:6:5: error: scorers.0.choice: give exactly one of 'choices' or 'choices_from' [schema]",
        "evals/bad.yaml:7:5: error: scorers.1: Input tag 'fuzzy' found using 'type' does not match any of the"
        " expected tags: 'exact', 'contains', 'icontains', 'regex', 'choice', 'numeric', 'json', 'python',"
        " 'llm-judge', 'embedding', 'tool-call', 'no-tool-call' [schema]",
    ]
    repo.write(
        "evals/bad.yaml",
        repo.path.joinpath("evals/bad.yaml")
        .read_text()
        .replace("  - {type: fuzzy}\n", "")
        .replace("type: choice", "type: exact"),
    )
    assert _lines(repo.run("lint").out) == [
        "evals/bad.yaml:1:22: error: suite names prompt 'missing', which does not exist [unknown-prompt]",
        "evals/bad.yaml:3:3: error: dataset file not found: evals/data/none.jsonl [dataset]",
        "evals/bad.yaml:4:10: error: prompt 'sentiment' declares no variable 'reviw' [unknown-variable]",
    ]


def test_dataset_outside_the_repository_is_refused(repo: Repo) -> None:
    repo.write(
        "evals/escape.yaml", "prompts: [sentiment]\ndataset: {path: ../../../etc/x.jsonl}\nscorers: [{type: exact}]\n"
    )
    out = repo.run("lint").out
    assert "evals/escape.yaml:2:11: error: '" in out and "is outside the repository" in out


def test_labels_pointing_nowhere(repo: Repo) -> None:
    first = repo.git("rev-parse", "HEAD")
    repo.write("prompts/later.yaml", "name: later\ntemplate: hi\n")
    repo.commit("later")
    ghost = "deadbeef" * 5
    repo.write(
        "labels.yaml",
        f"sentiment:\n  production: {first}\n  ghost: '{ghost}'\nlater:\n  production: {first}\n",
    )
    result = repo.run("lint")
    assert result.code == ExitCode.FAILED
    assert _lines(result.out) == [
        "labels.yaml:3:3: error: label 'sentiment@ghost' points at deadbeefde, which is not a commit in this"
        " repository [label-target]",
        f"labels.yaml:5:3: error: label 'later@production' points at {first[:10]}, where the prompt does not exist"
        " [label-target]",
    ]


def test_malformed_labels_file(repo: Repo) -> None:
    repo.write("labels.yaml", "sentiment:\n  production: abc\n")
    assert _lines(repo.run("lint").out) == [
        "labels.yaml:2:3: error: label 'sentiment@production' must point at a full commit sha [labels]"
    ]


def test_paths_limit_the_report(repo: Repo) -> None:
    repo.write("prompts/a.yaml", "name: a\ntemplate: '{{ x }}'\n")
    repo.write("prompts/b.yaml", "name: b\ntemplate: '{{ y }}'\n")
    out = _lines(repo.run("lint", str(repo.path / "prompts/b.yaml")).out)
    assert out == [
        "prompts/b.yaml:2:11: error: variable 'y' is used but not declared under 'variables' [undeclared-variable]"
    ]
    assert repo.run("lint", str(repo.path / "prompts/nope.yaml")).code == ExitCode.USAGE
    outside = repo.run("lint", "/etc")
    assert outside.code == ExitCode.USAGE and "outside the repository" in outside.err


def test_json_output(repo: Repo) -> None:
    repo.write("prompts/a.yaml", "name: a\ntemplate: '{{ x }}'\n")
    report = json.loads(repo.run("lint", "--format", "json").out)
    assert report["errors"] == 1 and report["files"] == 3
    assert report["diagnostics"][0] == {
        "path": "prompts/a.yaml",
        "line": 2,
        "col": 11,
        "severity": "error",
        "code": "undeclared-variable",
        "message": "variable 'x' is used but not declared under 'variables'",
    }


def test_a_bad_config_is_a_lint_error_with_its_position_and_the_rest_is_linted(repo: Repo) -> None:
    repo.write("promptci.yaml", "prompts_dir: prompts\nmodle: {}\n")
    repo.write("prompts/broken.yaml", "name: broken\ntemplate: '{{ x }}'\n")
    result = repo.run("lint")
    assert result.code == ExitCode.FAILED  # as docs/commands.md says: 1, with the usual summary
    lines = result.out.splitlines()
    assert lines[0] == "promptci.yaml:2:1: error: unknown key 'modle' [config]"
    assert any(line.startswith("prompts/broken.yaml:2:") for line in lines)
    assert "2 errors" in result.err
    assert repo.run("eval").code == ExitCode.USAGE  # every other command still refuses a bad config


def test_this_repository_passes_its_own_lint(capsys: object) -> None:
    from promptci.lint import lint
    from promptci.project import Project

    report = lint(Project.discover(REPO_ROOT))
    assert report.diagnostics == [] and report.files >= 12


def test_a_choice_dataset_whose_gold_answer_sits_on_one_position_is_flagged(repo: Repo) -> None:
    import json

    rows = []
    for i in range(60):
        choices = [f"opt{i}-{k}" for k in range(4)]
        gold = choices[0] if i < 45 else choices[i % 4]  # 45 + 3 of 60 first: 80%
        rows.append(json.dumps({"input": f"q{i}", "target": gold, "choices": choices}))
    repo.write("evals/data/skewed.jsonl", "\n".join(rows) + "\n")
    repo.write(
        "evals/skewed.yaml",
        "prompts: [sentiment]\ndataset:\n  path: data/skewed.jsonl\n  vars: {review: input}\n  expected: target\n"
        "  limit: 10\nscorers:\n  - type: choice\n    choices_from: choices\n",
    )
    result = repo.run("lint")
    assert result.code == 0  # a warning
    assert (
        "evals/skewed.yaml:3:3: warning: the gold answer is the first option in 48 of 60 rows (80%): always picking"
        " that position scores that; shuffle the options [answer-balance]"
    ) in result.out
    balanced = [
        json.dumps({**json.loads(r), "choices": sorted(json.loads(r)["choices"], reverse=i % 2 == 0)})
        for i, r in enumerate(rows)
    ]
    repo.write("evals/data/skewed.jsonl", "\n".join(balanced) + "\n")
    assert "answer-balance" not in repo.run("lint").out
