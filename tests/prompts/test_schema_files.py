"""Schemas kept in files of the repository: read where the prompt is read (working tree or commit),
part of its content hash, and refused, at the ref's line, when they leave the repository, loop,
or are not what a schema file is."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

import promptci

from ..conftest import Repo
from ..hostile.conftest import one_line

ORDER = {
    "type": "object",
    "$defs": {"id": {"type": "string", "pattern": "^[0-9]+$"}},
    "properties": {"order_id": {"$ref": "#/$defs/id"}, "address": {"$ref": "schemas/address.json"}},
    "required": ["order_id"],
}
ADDRESS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

PROMPT = """\
name: lookup
messages:
  - role: user
    content: "{{ question }}"
variables: {question: string}
tools:
  - type: function
    function:
      name: order_status
      description: Where an order is.
      parameters: {$ref: schemas/order.json}
"""


@pytest.fixture
def filed(repo: Repo) -> Repo:
    repo.write("schemas/order.json", json.dumps(ORDER))
    repo.write("schemas/address.json", json.dumps(ADDRESS))
    repo.write("prompts/lookup.yaml", PROMPT)
    repo.commit("a tool whose schema is a file")
    return repo


def parameters(repo: Repo, rev: str | None = None) -> dict[str, object]:
    prompt = promptci.load("lookup", rev, root=repo.path)
    found: dict[str, object] = prompt.openai_kwargs(question="q")["tools"][0]["function"]["parameters"]
    return found


def test_a_schema_file_is_put_in_place_with_the_files_it_refers_to(filed: Repo) -> None:
    assert filed.run("lint").code == 0
    schema = parameters(filed)
    assert schema["properties"]["address"] == ADDRESS  # type: ignore[index]
    assert schema["properties"]["order_id"] == {"$ref": "#/$defs/id"}  # type: ignore[index]
    jsonschema.validate({"order_id": "42", "address": {"city": "Oslo"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"order_id": "x"}, schema)  # its own $defs still resolve


def test_a_file_below_the_root_keeps_its_own_refs_pointing_into_itself(repo: Repo) -> None:
    nested = {
        "$defs": {"c": {"type": "string", "maxLength": 3}},
        "type": "object",
        "properties": {"city": {"$ref": "#/$defs/c"}},
    }
    repo.write("schemas/address.json", json.dumps(nested))
    repo.write("schemas/order.json", json.dumps(ORDER))
    repo.write("prompts/lookup.yaml", PROMPT)
    schema = parameters(repo)
    assert schema["properties"]["address"]["properties"]["city"] == {"$ref": "#/properties/address/$defs/c"}  # type: ignore[index]
    jsonschema.validate({"order_id": "1", "address": {"city": "Oslo"[:3]}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"order_id": "1", "address": {"city": "Oslo"}}, schema)


def test_the_hash_covers_the_files_bytes_and_a_version_reads_them_at_its_commit(filed: Repo) -> None:
    before = promptci.load("lookup", root=filed.path).version.content_hash
    filed.write("schemas/address.json", json.dumps({**ADDRESS, "required": []}))
    after = promptci.load("lookup", root=filed.path).version.content_hash
    assert after != before  # the prompt file did not change; its schema did
    filed.commit("addresses need no city")
    assert parameters(filed, "HEAD~1")["properties"]["address"] == ADDRESS  # type: ignore[index]
    assert parameters(filed, "HEAD")["properties"]["address"]["required"] == []  # type: ignore[index]


HOSTILE = [
    # (the ref, what is written where, what lint and render say)
    ("../../etc/passwd", {}, "is not a .json file inside the repository"),
    ("/etc/passwd.json", {}, "is not a .json file inside the repository"),
    ("schemas/../../x.json", {}, "is not a .json file inside the repository"),
    ("https://example.com/s.json", {}, "is a URL: no URL is fetched"),
    ("schemas/none.json", {}, "schemas/none.json': no such file"),
    ("schemas/a.json", {"schemas/a.json": '{"$ref": "schemas/b.json"}', "schemas/b.json": '{"$ref": "schemas/a.json"}'},
     "recursive $ref: schemas/a.json → schemas/b.json → schemas/a.json"),
    ("schemas/big.json", {"schemas/big.json": '{"description": "' + "x" * (1024 * 1024) + '"}'}, "schema file is larger than 1 MiB"),
    ("schemas/bad.json", {"schemas/bad.json": '{"type": '}, "schemas/bad.json': not JSON"),
    ("schemas/nan.json", {"schemas/nan.json": '{"minimum": NaN}'}, "not JSON (NaN is not JSON)"),
    ("schemas/list.json", {"schemas/list.json": "[1, 2]"}, "a schema file holds one JSON object"),
    ("schemas/bad-schema.json", {"schemas/bad-schema.json": '{"type": 7}'}, "not a valid JSON Schema"),
]  # fmt: skip


@pytest.mark.parametrize(("ref", "files", "message"), HOSTILE)
def test_a_ref_that_cannot_be_read_is_refused_at_its_line(
    repo: Repo, ref: str, files: dict[str, str], message: str
) -> None:
    for rel, text in files.items():
        repo.write(rel, text)
    repo.write("prompts/lookup.yaml", PROMPT.replace("schemas/order.json", ref))
    linted = repo.run("lint")
    assert linted.code == 1
    (line,) = [x for x in linted.out.splitlines() if message in x]
    assert line.startswith("prompts/lookup.yaml:11:") and line.endswith("[tools]"), line
    if "valid JSON Schema" in message:
        return  # a schema that is not one is lint's to refuse; rendering sends it as written
    shown = repo.run("render", "lookup", "--var", "question=q")
    assert shown.code == 2 and message in one_line(shown.err) and "prompts/lookup.yaml:11" in shown.err


def test_a_link_out_of_the_repository_is_no_file(repo: Repo, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.json"
    outside.write_text('{"description": "the secret"}')
    (repo.path / "schemas").mkdir()
    os.symlink(outside, repo.path / "schemas/order.json")
    repo.write("prompts/lookup.yaml", PROMPT)
    shown = repo.run("render", "lookup", "--var", "question=q")
    assert shown.code == 2 and "schemas/order.json': no such file" in one_line(shown.err)
    assert "the secret" not in shown.out + shown.err
