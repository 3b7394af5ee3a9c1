"""``promptci.yaml``: where things live, the default model, the results DB and the gate."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError
from .files import read_text
from .names import check_branch, check_remote
from .settings import ModelSettings, OptimizeSpec
from .yamlio import YamlDocument, parse_yaml

CONFIG_FILE = "promptci.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class GatePolicy(_Strict):
    max_drop: float | None = Field(None, ge=0, le=1, description="largest tolerated drop in mean score")
    alpha: float | None = Field(None, gt=0, lt=1, description="significance level of the paired test")


class GateConfig(_Strict):
    """Regression gate thresholds used by ``promptci compare``."""

    max_drop: float = Field(0.0, ge=0, le=1, description="largest tolerated drop in mean score")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the paired test")
    power: float = Field(
        0.8, gt=0, lt=1, description="the power at which compare reports the smallest drop a suite detects"
    )
    correction: Literal["holm", "bh", "none"] = Field(
        "holm",
        description="when one compare tests several suite × prompt rows: holm (family-wise error),"
        " bh (Benjamini–Hochberg, false discovery rate) or none",
    )
    flaky: Literal["ignore", "report", "fail"] = Field(
        "report",
        description="cases whose repeats disagree: left out of the test (ignore), listed apart from"
        " regressions (report), or listed and failing the gate (fail)",
    )
    min_kappa: float = Field(
        0.6, ge=-1, le=1, description="compare warns when a verdict rests on a judge whose κ with people is below"
    )
    suites: dict[str, GatePolicy] = Field(default_factory=dict, description="per-suite overrides")

    def for_suite(self, suite: str) -> tuple[float, float]:
        """(max_drop, alpha) for one suite."""
        override = self.suites.get(suite)
        max_drop = override.max_drop if override and override.max_drop is not None else self.max_drop
        alpha = override.alpha if override and override.alpha is not None else self.alpha
        return max_drop, alpha


class ResultsConfig(_Strict):
    """Where ``promptci results push`` publishes runs, and where ``pull`` and ``--results`` read them."""

    url: str | None = Field(
        None, description="a directory or fsspec URL (s3://bucket/prefix) for the Parquet sets; default: the git branch"
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="fsspec storage options for url, e.g. endpoint_url; credentials belong in the environment",
    )
    branch: str = Field("promptci-results", description="the results branch, where no url is set")
    remote: str = Field("origin", description="the git remote of the results branch")

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str) -> str:
        return check_remote(value)

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        return check_branch(value)


class ImagesConfig(_Strict):
    max_bytes: int = Field(
        5 * 1024 * 1024, ge=1, le=50 * 1024 * 1024, description="the largest repository image a prompt may send"
    )


class Config(_Strict):
    """The project configuration. Every path is relative to the repository root."""

    prompts_dir: str = "prompts"
    evals_dir: str = "evals"
    pipelines_dir: str = Field("pipelines", description="pipeline files; their names share one namespace with prompts")
    labels_file: str = "labels.yaml"
    db: str = Field(".promptci/results.duckdb", description="the DuckDB results file")
    cache_dir: str = ".promptci/cache"
    default_branch: str | None = Field(None, description="base for --changed; default: origin's HEAD, main or master")
    model: ModelSettings = Field(default_factory=ModelSettings, description="the default model")
    gate: GateConfig = Field(default_factory=GateConfig)
    results: ResultsConfig = Field(default_factory=ResultsConfig, description="where results are published")
    images: ImagesConfig = Field(default_factory=ImagesConfig, description="limits on the images prompts send")
    optimize: dict[str, OptimizeSpec] = Field(
        default_factory=dict, description="opt-in optimizer passes in CI, by prompt name"
    )


def load_config(path: Path, display: str | None = None) -> Config:
    """Read and validate a ``promptci.yaml``; an empty file means all defaults."""
    shown = display or str(path)
    doc = parse_yaml(read_text(path, shown, what="config"), shown)
    if doc.data is None:
        return Config()
    if not isinstance(doc.data, dict):
        raise InputError("the config must be a mapping of settings", path=shown, line=1, col=1)
    try:
        return Config.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error(exc, doc) from None


def validation_error(exc: ValidationError, doc: YamlDocument) -> InputError:
    """The first pydantic error of ``exc`` as a positioned :class:`InputError`."""
    err = exc.errors()[0]
    pos = doc.position(err["loc"])
    return InputError(describe_validation_error(err), path=doc.path, line=pos.line, col=pos.col)


def describe_validation_error(err: object) -> str:
    """A one-line reading of one pydantic error entry."""
    assert isinstance(err, dict)
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key '{err['loc'][-1]}'"
    if err["type"] == "missing":
        return f"missing required key '{loc}'"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "string_type" and isinstance(err.get("input"), bool):
        msg += "; YAML reads unquoted yes/no/true/false/on/off as booleans, so quote it"
    return f"{loc}: {msg}" if loc else msg
