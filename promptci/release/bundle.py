"""``promptci bundle``: every prompt and pipeline at the requested labels, resolved from git into
one deterministic file (:mod:`promptci.runtime.bundle` has the format). The same repository
state gives the same bytes: no time, host or path outside the repository goes in."""

from __future__ import annotations

import json
from typing import Any

from ..errors import InputError, NotFoundError
from ..pipelines.load import Pipeline, Pipelines
from ..project import Project
from ..prompts.labelfile import LATEST, read_labels
from ..prompts.prompt import Prompt
from ..prompts.registry import Registry
from ..prompts.split import Split
from ..runtime.bundle import FORMAT, VERSION, digest


def build(project: Project, names: list[str] | None = None, labels: list[str] | None = None) -> dict[str, Any]:
    """The bundle of ``names`` (default: every prompt and pipeline at HEAD or labelled) at
    ``labels`` (default: every label in use, plus ``latest``)."""
    registry, pipelines = Registry(project), Pipelines(project)
    targets = read_labels(project)
    head = registry.repo.resolve("HEAD")
    at_head = {p.name: p for p in registry.load_all(head)}
    flows = {p.name: p for p in pipelines.load_all(head)}
    known = set(at_head) | set(flows) | set(targets)
    for name in names or []:
        if name not in known:
            raise NotFoundError(f"no prompt or pipeline named '{name}' at HEAD or in the labels file")
    chosen = sorted(names or known)
    in_use = {label for name in chosen for label in targets.get(name, {})}
    for label in labels or []:
        if label != LATEST and label not in in_use:
            raise InputError(
                f"no prompt or pipeline has the label '{label}'", hint=f"labels in use: {', '.join(sorted(in_use))}"
            )
    wanted = set(labels) if labels else in_use | {LATEST}
    body: dict[str, Any] = {"format": FORMAT, "version": VERSION, "prompts": {}, "pipelines": {}}
    for name in chosen:
        kind = "pipelines" if name in flows else "prompts"
        entry = body[kind].setdefault(name, {"labels": {}, "versions": {}})
        for label, target in sorted(targets.get(name, {}).items()):
            if label in wanted:
                entry["labels"][label] = _shares(body, kind, name, target, registry, pipelines)
        if LATEST in wanted and (name in at_head or name in flows):
            latest = at_head.get(name) or flows[name]
            entry["labels"][LATEST] = [_add(body, kind, latest, 1.0)]
        if not entry["labels"] and not entry["versions"]:
            del body[kind][name]  # nothing of it at the labels asked for, and no pipeline step uses it
    if not body["prompts"] and not body["pipelines"]:
        raise InputError("nothing to bundle at the labels asked for")
    body.pop("_image_bytes", None)
    body["digest"] = digest(body)  # over the prompts verbatim: redaction is for what is recorded, not shipped
    return body


def dump(body: dict[str, Any]) -> bytes:
    """The bundle's bytes: sorted keys, so the same content is always the same file."""
    return (json.dumps(body, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def _shares(
    body: dict[str, Any], kind: str, name: str, target: str | Split, registry: Registry, pipelines: Pipelines
) -> list[dict[str, Any]]:
    versions = [(target, 1.0)] if isinstance(target, str) else list(target.versions)
    files: Registry | Pipelines = pipelines if kind == "pipelines" else registry
    return [_add(body, kind, files.get(name, commit), weight, commit) for commit, weight in versions]


def _add(
    body: dict[str, Any], kind: str, found: Prompt | Pipeline, weight: float, commit: str | None = None
) -> dict[str, Any]:
    """Hold ``found`` in the bundle; the share of a label that points at it."""
    commit = commit or found.version.commit or found.rev
    _refuse_secrets(found, commit or "")
    held: dict[str, Any] = {"commit": commit, "path": found.path, "source": found.source}
    if isinstance(found, Pipeline):
        held["pipeline"] = found.spec.model_dump(mode="json", exclude={"optimize"})
        held["steps"] = [  # a list: the bundle's keys are sorted, and steps run in order
            _add_step(body, step.id, prompt) for step, prompt in zip(found.spec.steps, found.prompts, strict=True)
        ]
    else:
        held["prompt"] = found.spec.model_dump(mode="json", by_alias=True, exclude={"optimize"})
        if images := _images(body, found, commit):
            held["images"] = images
    body[kind].setdefault(found.name, {"labels": {}, "versions": {}})["versions"][found.content_hash] = held
    return {"commit": commit, "version": found.content_hash, "weight": weight}


MAX_IMAGE_BYTES = 16 * 2**20  # the images one bundle carries, in all


def _images(body: dict[str, Any], prompt: Prompt, commit: str | None) -> dict[str, str]:
    """The repository images ``prompt`` names by a fixed path, base64, read at its commit; refused
    past :data:`MAX_IMAGE_BYTES` in all, when an https URL is the way to ship them."""
    import base64

    from ..prompts.images import Images, digests

    images = prompt.images or Images()
    carried = {}
    named = digests(prompt.spec.model_dump(mode="json")["messages"], images) if prompt.spec.messages else {}
    for ref, sha in named.items():
        data = images.bytes_of(ref)
        sizes = body.setdefault("_image_bytes", {})  # by sha256: an image two versions share counts once
        sizes[sha] = len(data)
        if sum(sizes.values()) > MAX_IMAGE_BYTES:
            most = MAX_IMAGE_BYTES // 2**20
            raise InputError(
                f"image '{ref}' of prompt '{prompt.name}' takes the images the bundle carries past {most} MiB",
                path=prompt.path,
                hint="serve large images from an https URL, which a bundle carries as text",
            )
        carried[ref] = base64.b64encode(data).decode()
    if prompt.spec.examples is not None:  # the example pool: read with the same limits as rendering
        from ..prompts.examples import MAX_POOL_BYTES

        pool = prompt.spec.examples.from_
        carried[pool] = base64.b64encode(images.read_file(pool, MAX_POOL_BYTES, "example pool")).decode()
    return carried


def _add_step(body: dict[str, Any], step: str, prompt: Prompt) -> dict[str, str]:
    _add(body, "prompts", prompt, 1.0)
    return {"id": step, "prompt": prompt.name, "version": prompt.content_hash}


def _refuse_secrets(found: Prompt | Pipeline, commit: str) -> None:
    """A bundle ships a prompt's or pipeline's whole file as written (its description, model
    parameters and comments too), so one that holds a credential anywhere is not bundled."""
    from ..prompts.template import secret_in

    if at := secret_in(found.source):
        kind = "pipeline" if isinstance(found, Pipeline) else "prompt"
        raise InputError(
            f"{kind} '{found.name}' at {commit[:10]} holds what looks like a credential; refusing to bundle it",
            path=found.path,
            line=at[0],
            col=at[1],
            hint="pass the value as a variable, or a key through `api_key_env`; `promptci lint` shows where",
        )
