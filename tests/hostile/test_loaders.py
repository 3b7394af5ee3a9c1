"""Hostile and careless files: every loader refuses them with exit 2 and one positioned line."""

from __future__ import annotations

from typing import Any

import duckdb

from tests.conftest import Repo
from tests.hostile.conftest import fail_every_case, one_line

BOMB = """\
name: bomb
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
template: hi
"""


def test_an_alias_bomb_is_refused_by_every_command(repo: Repo) -> None:
    repo.write("prompts/bomb.yaml", BOMB)
    r = repo.run("ls")
    assert r.code == 2
    assert one_line(r.err).startswith("error: prompts/bomb.yaml:8:4: YAML expands to over 1,000,000 values")
    for args in (["show", "bomb", "--format", "json"], ["render", "bomb"]):
        r = repo.run(*args)
        assert r.code == 2, (args, r)
        assert one_line(r.err) == (
            "error: prompts/bomb.yaml:8:4: YAML expands to over 1,000,000 values; refusing to load it"
            " (no readable file declares prompt 'bomb'; this one may)"
        )
    # an unrelated prompt renders; the bomb only costs its own file
    r = repo.run("render", "sentiment", "--var", "review=fine")
    assert r.code == 0, r.err
    r = repo.run("lint")
    assert r.code == 1 and "prompts/bomb.yaml:8:4" in r.out


def test_deep_nesting_is_refused(repo: Repo) -> None:
    repo.write("prompts/deep.yaml", "name: deep\ntemplate: hi\nx: " + "[" * 150 + "]" * 150 + "\n")
    r = repo.run("show", "deep")
    assert (
        r.code == 2 and one_line(r.err).startswith("error: prompts/deep.yaml:3:") and "nests deeper than 100" in r.err
    )


def test_an_oversized_file_is_not_read(repo: Repo) -> None:
    repo.write("prompts/huge.yaml", "name: huge\ntemplate: hi\n# " + "x" * (5 * 1024 * 1024) + "\n")
    r = repo.run("show", "huge")
    assert r.code == 2 and "larger than 4 MiB" in one_line(r.err)


def test_non_utf8_bytes_name_the_file_and_line(repo: Repo) -> None:
    sentiment = (repo.path / "prompts/sentiment.yaml").read_bytes()
    (repo.path / "prompts/sentiment.yaml").write_bytes(sentiment.replace(b"Label the", b"Label \xff the"))
    r = repo.run("show", "sentiment")
    assert r.code == 2
    assert one_line(r.err).startswith("error: prompts/sentiment.yaml:3:20: not UTF-8 text: byte 0xff")
    r = repo.run("lint")
    assert r.code == 1 and "prompts/sentiment.yaml:3:20" in r.out


def test_non_utf8_suite_config_dataset_and_vars_file_exit_2(repo: Repo) -> None:
    suite = (repo.path / "evals/sentiment.yaml").read_bytes()
    (repo.path / "evals/sentiment.yaml").write_bytes(suite + b"# \xc3\x28\n")
    r = repo.run("eval")
    assert r.code == 2 and "evals/sentiment.yaml:" in one_line(r.err) and "not UTF-8" in r.err
    (repo.path / "evals/sentiment.yaml").write_bytes(suite)

    (repo.path / "vars.yaml").write_bytes(b"review: \xfe\n")
    r = repo.run("render", "sentiment", "--vars-file", str(repo.path / "vars.yaml"))
    assert r.code == 2 and "not UTF-8" in one_line(r.err)

    repo.write(
        "evals/data.yaml",
        "prompts: [sentiment]\nscorers: [{type: exact}]\ndataset: {path: rows.jsonl, vars: {review: r}, expected: e}\n",
    )
    (repo.path / "evals/rows.jsonl").write_bytes(b'{"r": "good", "e": "positive"}\n{"r": "\xff", "e": "x"}\n')
    r = repo.run("eval", "evals/data.yaml")
    assert r.code == 2 and one_line(r.err).startswith("error: evals/rows.jsonl:2:") and "not UTF-8" in r.err

    config = (repo.path / "promptci.yaml").read_bytes()
    (repo.path / "promptci.yaml").write_bytes(config + b"# \x80\n")
    r = repo.run("ls")
    assert r.code == 2 and one_line(r.err).startswith("error: promptci.yaml:") and "not UTF-8" in r.err


def test_a_short_csv_row_stops_the_run(repo: Repo) -> None:
    repo.write("evals/rows.csv", "review,label\nGreat,positive\nAwful\n")
    repo.write(
        "evals/csv.yaml",
        "prompts: [sentiment]\nscorers: [{type: exact}]\ndataset: {path: rows.csv, vars: {review: review}, expected: label}\n",
    )
    r = repo.run("eval", "evals/csv.yaml")
    assert r.code == 2
    assert one_line(r.err) == "error: evals/rows.csv:3: row has fewer cells than the header (no 'label')"
    assert not (repo.path / ".promptci/results.duckdb").exists()


TEMPLATE_BOMBS = {
    "multiply": "{{ 'a' * 10**10 }}",
    "list": "{{ [1] * 10**9 }}",
    "loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "range": "{{ range(10**9) }}",
    "recursion": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "doubling": "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "center": "{{ 'a' | center(10**9) }}",
    "format": "{{ '{:>999999999}'.format(1) }}",
    "replace": "{% set s = 'a' * 1000 %}{{ s | replace('a', s) | replace('a', s) }}",
    "literal_loop": "{% for i in range(100000) %}twenty characters...{% endfor %}",
}


def test_templates_render_under_limits(repo: Repo) -> None:
    for name, body in TEMPLATE_BOMBS.items():
        repo.write(f"prompts/{name}.yaml", f'name: {name}\ntemplate: "{body}"\n')
        r = repo.run("render", name)
        assert r.code == 2, (name, r)
        assert one_line(r.err).startswith(f"error: prompt '{name}' (prompts/{name}.yaml): template"), r.err


def test_lipsum_is_not_available(repo: Repo) -> None:
    repo.write("prompts/filler.yaml", "name: filler\ntemplate: '{{ lipsum(n=10**7) }}'\n")
    assert repo.run("render", "filler").code == 2
    r = repo.run("lint")
    assert "variable 'lipsum' is used but not declared" in r.out


def test_lint_flags_what_it_can_see_statically(repo: Repo) -> None:
    repo.write(
        "prompts/static.yaml",
        "name: static\nmessages:\n  - role: user\n    content: |\n      ok\n"
        "      {% macro m() %}{{ m() }}{% endmacro %}\n      {{ range(10**9) }} {{ 'a' * 10**10 }}\n",
    )
    r = repo.run("lint", "prompts/static.yaml")
    assert r.code == 1
    assert "prompts/static.yaml:6:1: error: macro 'm' calls itself" in r.out
    assert "prompts/static.yaml:7:1: error: range() of more than 100,000 items always fails" in r.out
    assert "prompts/static.yaml:7:1: error: template multiplies a sequence past 1,000,000 items" in r.out


def test_a_template_over_its_limits_is_a_recorded_render_error_in_eval(repo: Repo) -> None:
    fail_every_case(repo)
    r = repo.run("eval")
    assert r.code == 1, r.err  # cases errored; the run itself completed
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as db:
        errors = [e for (e,) in db.execute("SELECT error FROM results").fetchall()]
        status = db.execute("SELECT status FROM runs").fetchall()
    assert errors and all(e.startswith("render: prompt 'sentiment'") and "multiplies a sequence" in e for e in errors)
    assert status == [("complete",)]


def test_render_of_a_broken_template_names_the_line(repo: Repo) -> None:
    text = (repo.path / "prompts/sentiment.yaml").read_text().replace("Sentiment:", "Sentiment: {% if %}")
    repo.write("prompts/sentiment.yaml", text)
    r = repo.run("render", "sentiment", "--var", "review=x")
    assert r.code == 2
    assert one_line(r.err).startswith("error: prompts/sentiment.yaml:10:1: template error:")


def test_a_mean_over_few_scored_cases_says_so(repo: Repo, katan: Any) -> None:
    repo.use_model_server(katan("-b", "echo").base_url)
    text = (repo.path / "prompts/sentiment.yaml").read_text()
    repo.write(
        "prompts/sentiment.yaml",
        text.replace("Review: {{ review }}", "Review: {{ review * (10**9 if review|length is odd else 1) }}"),
    )
    r = repo.run("eval")
    assert r.code == 1
    row = next(line for line in r.out.splitlines() if line.startswith("sentiment"))
    cells = row.split("\t")
    assert cells[4] != "0" and cells[-1] == "error"
    assert cells[6].endswith(f"({int(cells[2]) - int(cells[4])} of {cells[2]} scored)")


def test_the_pr_comment_shows_model_output_as_inert_text() -> None:
    from promptci.compare.report import _cell

    hostile = '<img src=x onerror="alert(1)"> ![t](http://tracker/p.gif) [click](javascript:x) | `x`'
    cell = _cell(hostile)
    assert "<" not in cell and "](" not in cell.replace("\\](", "")
    assert (
        cell
        == '&lt;img src=x onerror="alert(1)"&gt; \\!\\[t\\](http://tracker/p.gif) \\[click\\](javascript:x) \\| \\`x\\`'
    )


def test_a_recursive_alias_is_refused(repo: Repo) -> None:
    repo.write("labels.yaml", "b: &b {c: *b}\n")
    r = repo.run("label", "ls")
    assert r.code == 2
    assert one_line(r.err) == "error: labels.yaml:1:4: YAML alias refers to the value it is inside; refusing to load it"
