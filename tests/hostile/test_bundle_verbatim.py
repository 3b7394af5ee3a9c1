"""A bundle ships each prompt exactly as written, on stdout as with -o; a credential written into a
prompt is a lint error at its position and is never bundled; what lint accepts renders."""

from __future__ import annotations

import json

import pytest

import promptci
from promptci.errors import PromptciError, RenderError
from tests.conftest import Repo
from tests.hostile.conftest import one_line

PROMPT = "name: link\ntemplate: {template}\nvariables:\n{variables}"

# Templates whose tags sit where the redaction layer would see a credential: they must ship verbatim.
LOOKS_LIKE_SECRETS = [
    ("'Fetch https://example.com/api?token={{ tok }}'", {"tok": "T"}, "Fetch https://example.com/api?token=T"),
    ("'api_key: \"{{ key }}\"'", {"key": "K"}, 'api_key: "K"'),
    ("'Authorization: Bearer {{ token }}'", {"token": "T"}, "Authorization: Bearer T"),
    ("'https://{{ user }}:{{ pw }}@host/x'", {"user": "u", "pw": "p"}, "https://u:p@host/x"),
    ("'x-api-key={{ k }}&sig={{ s }}'", {"k": "1", "s": "2"}, "x-api-key=1&sig=2"),
    ("'password: {{ pw }}'", {"pw": "hunter2hunter2"}, "password: hunter2hunter2"),
    ("'{# token=abcdefghijkl #}plain'", {}, "plain"),
    ("'sk-{{ rest }}'", {"rest": "x"}, "sk-x"),
]
# Credentials in a prompt's literal text: (template, line, column of the secret in the template).
SECRETS = [
    ("'Use https://api.example.com/v1?api_key=abcdef123456 now'", 2, 51),
    ("'Key: sk-abcdefghijklmnopqrstuv'", 2, 17),
    ("'Authorization: Bearer abcdefghijklmnop'", 2, 34),
    ("'ghp_abcdefghijklmnopqrstuvwxyz0123456789'", 2, 12),
    ("'AKIAABCDEFGHIJKLMNOP is the id'", 2, 12),
    ("'https://admin:s3cretpw@db.example.com/'", 2, 20),
    ("|\n  Line one.\n  Then call /x?token=abcdefghij&x=1 here.", 4, 22),
]


def _prompt(repo: Repo, template: str, names: list[str]) -> None:
    variables = "".join(f"  {n}: {{type: string}}\n" for n in names) or "  {}\n"
    repo.write("prompts/link.yaml", PROMPT.format(template=template, variables=variables))
    repo.commit("link")


@pytest.mark.parametrize(("template", "values", "rendered"), LOOKS_LIKE_SECRETS)
def test_a_bundle_ships_the_prompt_verbatim_on_stdout_and_to_a_file(
    repo: Repo, template: str, values: dict[str, str], rendered: str
) -> None:
    _prompt(repo, template, sorted(values))
    assert repo.run("lint").code == 0
    piped = repo.run("bundle")
    written = repo.run("bundle", "-o", "b.json")
    assert piped.code == 0 and written.code == 0
    data = (repo.path / "b.json").read_text()
    assert piped.out == data  # the same bytes, redaction or not
    body = json.loads(data)
    (held,) = body["prompts"]["link"]["versions"].values()
    assert held["source"] == (repo.path / "prompts/link.yaml").read_text()
    prompt = promptci.load("link", label="latest", bundle=repo.path / "b.json")
    assert prompt.render(**values) == [{"role": "user", "content": rendered}]


@pytest.mark.parametrize(("template", "line", "col"), SECRETS)
def test_a_credential_in_a_prompt_is_a_lint_error_at_its_place_and_is_not_bundled(
    repo: Repo, template: str, line: int, col: int
) -> None:
    _prompt(repo, template, [])
    linted = repo.run("lint")
    assert linted.code == 1
    assert f"prompts/link.yaml:{line}:{col}: error: the prompt holds what looks like a credential" in linted.out
    bundled = repo.run("bundle", "-o", "b.json")
    assert bundled.code == 2 and "refusing to bundle it" in one_line(bundled.err)
    assert not (repo.path / "b.json").exists()


LOADER_TAGS = [
    "'{% include \"other.txt\" %}'",
    "'{% extends \"base.txt\" %}'",
    "'{% from \"m.txt\" import x %}{{ x }}'",
    "'{% import \"m.txt\" as m %}{{ m.x }}'",
]


@pytest.mark.parametrize("template", [*LOADER_TAGS, "'" + "{% if a %}" * 120 + "x" + "{% endif %}" * 120 + "'"])
def test_what_cannot_render_is_a_lint_error_and_a_render_error_never_a_crash(repo: Repo, template: str) -> None:
    names = ["a"] if "{% if a %}" in template else []
    _prompt(repo, template, names)
    linted = repo.run("lint")
    assert linted.code == 1 and "prompts/link.yaml:2:" in linted.out and "[template-limit]" in linted.out
    rendered = repo.run("render", "link", *(["--var", "a=1"] if names else []))
    assert rendered.code == 2 and "error:" in one_line(rendered.err)
    head = repo.git("rev-parse", "HEAD")
    assert repo.run("label", "set", "link", "production", head).code == 0
    assert repo.run("bundle", "-o", "b.json").code == 0
    prompt = promptci.load("link", bundle=repo.path / "b.json")
    with pytest.raises(PromptciError) as raised:
        prompt.render(**dict.fromkeys(names, "1"))
    assert isinstance(raised.value, RenderError)


# Credentials outside the templates: the bundle ships the whole file, so these are refused too.
OUTSIDE = [
    ("description: 'Keys: AKIAABCDEFGHIJKLMNOP'\n", 2),
    ("description: deploy token ghp_abcdefghijklmnopqrstuvwxyz0123456789\n", 2),
    ("model: {provider: openai, model: m, params: {api_key: sk-proj-abcdefghijklmnop0123}}\n", 2),
    ("# the staging key is sk-abcdefghijklmnopqrstuv, do not share\n", 2),
]


@pytest.mark.parametrize(("extra", "line"), OUTSIDE)
def test_a_credential_anywhere_in_the_file_is_a_lint_error_and_is_not_bundled(
    repo: Repo, extra: str, line: int
) -> None:
    text = "name: link\n" + extra + "template: 'plain {{ x }}'\nvariables:\n  x: {type: string}\n"
    repo.write("prompts/link.yaml", text)
    repo.commit("link")
    linted = repo.run("lint")
    assert linted.code == 1 and f"prompts/link.yaml:{line}:" in linted.out and "credential" in linted.out, linted
    bundled = repo.run("bundle", "-o", "b.json")
    assert bundled.code == 2 and "refusing to bundle it" in one_line(bundled.err)
    assert not (repo.path / "b.json").exists()
    assert "abcdefgh" not in bundled.out + bundled.err + linted.out + linted.err
