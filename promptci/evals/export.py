"""``-o FILE``: results as JSON, JSONL, CSV or JUnit XML, chosen by the file's extension."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from .. import redact
from ..errors import InputError
from ..store import RESULT_COLUMNS, ResultRow
from .runner import EvalReport

FORMATS = (".json", ".jsonl", ".csv", ".xml")


def check_paths(paths: tuple[Path, ...]) -> None:
    for path in paths:
        if path.suffix not in FORMATS:
            raise InputError(f"cannot tell the output format of {path}", hint=f"use one of {', '.join(FORMATS)}")


def write(report: EvalReport, path: Path) -> None:
    writers = {".json": _json, ".jsonl": _jsonl, ".csv": _csv, ".xml": _junit}
    redact.write(path, writers[path.suffix](report))


def _row(row: ResultRow) -> dict[str, Any]:
    data = asdict(row)
    data["created_at"] = row.created_at.isoformat()
    data["scores"] = json.loads(row.scores) if row.scores else None
    return data


def summary_dict(report: EvalReport) -> dict[str, Any]:
    return {
        "version": 1,
        "run_id": report.run_id,
        "status": report.status,
        "passed": not report.failed,
        "wall_s": round(report.wall_s, 3),
        "usage": asdict(report.usage),
        "skipped": report.skipped,
        "suites": [
            {
                "suite": s.suite,
                "prompt": s.prompt,
                "prompt_hash": s.prompt_hash,
                "model": s.model_id,
                "cases": s.cases,
                "scored": s.scored,
                "passed_cases": s.passed_cases,
                "errors": s.errors,
                "flaky": s.flaky,
                "repeats": s.repeats,
                "pass_all": s.pass_all,  # pass^k
                "pass_any": s.pass_any,  # pass@k
                "score": s.score,
                "threshold": s.threshold,
                "passed": s.passed,
                # every case that errored or failed, and why
                "problems": [
                    {
                        "case": o.name,
                        "case_id": o.case_id,
                        "kind": "error" if o.score is None else "failed",
                        "reason": o.reason,
                    }
                    for o in s.outcomes
                    if o.score is None or o.passed is False
                ],
            }
            for s in report.summaries
        ],
    }


def _json(report: EvalReport) -> str:
    return json.dumps({**summary_dict(report), "results": [_row(r) for r in report.rows]}, indent=2) + "\n"


def _jsonl(report: EvalReport) -> str:
    return "".join(json.dumps(_row(r)) + "\n" for r in report.rows)


def _csv(report: EvalReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RESULT_COLUMNS)
    writer.writeheader()
    for row in report.rows:
        data = _row(row)
        data["scores"] = row.scores
        writer.writerow(data)
    return out.getvalue()


def _junit(report: EvalReport) -> str:
    suites = ET.Element("testsuites", name="promptci", tests=str(sum(s.cases for s in report.summaries)))
    for s in report.summaries:
        failures = sum(1 for o in s.outcomes if o.passed is False)
        el = ET.SubElement(
            suites,
            "testsuite",
            name=f"{s.suite}/{s.prompt}",
            tests=str(s.cases),
            failures=str(failures),
            errors=str(s.errors),
        )
        props = ET.SubElement(el, "properties")
        for key, value in (("score", s.score), ("threshold", s.threshold), ("model", s.model_id)):
            ET.SubElement(props, "property", name=key, value=str(value))
        for o in s.outcomes:
            case = ET.SubElement(el, "testcase", classname=f"{s.suite}.{s.prompt}", name=o.name)
            if o.score is None:
                ET.SubElement(case, "error", message=o.reason or "every repeat errored")
            elif not o.passed:
                ET.SubElement(case, "failure", message=f"score {o.score:.3f}: {o.reason or ''}".rstrip(": "))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
