"""Lint's checks of ``optimize:`` blocks, in prompts, pipelines and ``promptci.yaml``: each names
a suite that exists and uses its prompt, once per prompt, and a method whose options validate."""

from __future__ import annotations

from typing import Any

from ..config import CONFIG_FILE
from ..diagnostics import Diagnostic, Facts, Located
from ..files import read_text
from ..project import Project
from ..prompts.registry import Ref
from ..yamlio import parse_yaml


def check_optimize(project: Project, prompts: list[Facts], suites: list[Facts]) -> list[Diagnostic]:
    """Each optimize: block names a suite that exists and uses its prompt; one block per prompt."""
    evals = project.config.evals_dir.rstrip("/") + "/"
    refs = {f.path.removeprefix(evals).rsplit(".", 1)[0]: {Ref.parse(r.text).name for r in f.refs} for f in suites}
    blocks: list[tuple[str, Located, str, Located]] = []  # prompt, where it is named, file, suite
    found = []
    for f in prompts:
        if f.name and f.optimize:
            blocks.append((f.name.text, f.name, f.path, f.optimize))
    if project.config_path is not None and project.config.optimize:
        doc = parse_yaml(read_text(project.config_path, CONFIG_FILE), CONFIG_FILE)
        for name, spec in project.config.optimize.items():
            key, value = doc.position(("optimize", name)), doc.position(("optimize", name, "suite"), value=True)
            named, suite = Located(name, key.line, key.col), Located(spec.suite, value.line, value.col)
            blocks.append((name, named, CONFIG_FILE, suite))
            if problem := method_problem(spec.model_dump()):
                at = doc.position(("optimize", name, *problem[0]))
                found.append(Diagnostic(CONFIG_FILE, at.line, at.col, "error", "optimize", problem[1]))
    seen: dict[str, str] = {}
    names = {f.name.text for f in prompts if f.name}
    for prompt, named, path, suite in blocks:
        if prompt in seen:
            message = f"optimize settings for '{prompt}' are also in {seen[prompt]}; keep them in one place"
            found.append(Diagnostic(path, named.line, named.col, "error", "optimize", message))
            continue
        seen[prompt] = path
        if prompt not in names:
            message = f"optimize: no prompt or pipeline named '{prompt}'"
            found.append(Diagnostic(path, named.line, named.col, "error", "optimize", message))
        elif suite.text not in refs:
            message = f"optimize: no suite named '{suite.text}' under {evals}"
            found.append(Diagnostic(path, suite.line, suite.col, "error", "optimize", message))
        elif prompt not in refs[suite.text]:
            message = f"optimize: suite '{suite.text}' does not use prompt '{prompt}'"
            found.append(Diagnostic(path, suite.line, suite.col, "error", "optimize", message))
    return found


def method_problem(block: dict[str, Any]) -> tuple[tuple[str, ...], str] | None:
    """Where an optimize: block's method or options go wrong, and how; None when they are fine."""
    from ..optimize import methods

    method, options = block.get("method", methods.DEFAULT), block.get("options") or {}
    if not isinstance(method, str) or not isinstance(options, dict):
        return None  # the schema check reports it
    if method == "auto":
        return (("options",), "auto chooses its own method, on its defaults: it takes no options") if options else None
    if "+" in method:  # a chain: options per link, {demos: {k: 2}}
        for link in method.split("+"):
            own = options.get(link) or {}
            problem = method_problem({"method": link, "options": own}) if isinstance(own, dict) else None
            if problem:
                return (problem[0] if problem[0] == ("method",) else ("options", link, *problem[0][1:])), problem[1]
        return None
    if not options and method in methods.builtin_names():
        return None  # every built-in method runs on its defaults: no need to import it to say so
    try:
        methods.configure(method, options)
    except methods.OptionError as exc:
        loc = ("method",) if exc.key is None else ("options", *exc.key.split("."))
        return loc, exc.message + (f" ({exc.hint})" if exc.hint else "")
    return None
