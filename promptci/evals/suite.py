"""The eval suite format: what an ``evals/*.yaml`` file may contain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..patterns import check as check_pattern
from ..patterns import compile_user
from ..settings import ModelSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class _Scorer(_Strict):
    weight: float = Field(1.0, ge=0, le=1_000, description="share of the case score")


class ExactScorer(_Scorer):
    type: Literal["exact"]
    case_sensitive: bool = True
    strip: bool = True


class ContainsScorer(_Scorer):
    """The output contains ``value`` (default: the expected value)."""

    type: Literal["contains", "icontains"]
    value: str | None = None


class RegexScorer(_Scorer):
    type: Literal["regex"]
    pattern: str
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return check_pattern(value)


class ChoiceScorer(_Scorer):
    """Pulls one allowed choice out of free text and compares it with the expected one."""

    type: Literal["choice"]
    choices: list[str] | None = Field(None, min_length=2)
    choices_from: str | None = Field(None, description="dataset column holding each case's choices")
    answer_pattern: str | None = Field(
        None,
        max_length=1000,
        description="a regular expression whose first group (or group 'answer') holds the answer; it decides first",
    )
    pick: Literal["first", "last"] | None = Field(
        None, description="when an output states two different choices: take the first or last (default: ambiguous)"
    )
    mode: Literal["generate", "loglik"] = Field(
        "generate",
        description="generate: parse the choice out of generated text; loglik: rank the choices by the local "
        "model's log-likelihood of each, generating nothing",
    )
    normalize: bool = Field(False, description="with loglik: rank by log-likelihood per character (acc_norm)")
    calibrate: bool = Field(
        False,
        description="with loglik: divide out the model's prior over the choices, measured on a content-free input",
    )

    @field_validator("answer_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if compile_user(value).groups == 0:
            raise ValueError("answer_pattern needs a group around the answer, e.g. 'Answer: (\\w+)'")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ChoiceScorer:
        if (self.choices is None) == (self.choices_from is None):
            raise ValueError("give exactly one of 'choices' or 'choices_from'")
        if self.mode != "loglik" and (self.normalize or self.calibrate):
            raise ValueError("normalize and calibrate need mode: loglik")
        return self


class NumericScorer(_Scorer):
    type: Literal["numeric"]
    tolerance: float = Field(0.0, ge=0, allow_inf_nan=False)
    relative: bool = False


class ArgumentCheck(_Strict):
    """How one argument is matched, instead of equality."""

    tolerance: float | None = Field(None, ge=0, allow_inf_nan=False, description="a number within this")
    contains: bool = Field(False, description="holds the expected text, ignoring case")


class JsonScorer(_Scorer):
    """The output is valid JSON and, when ``schema`` is given, matches it; with ``fields``, the
    score is the share of the expected object's fields the output's object matches."""

    type: Literal["json"]
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    fields: bool = Field(False, description="score the share of the expected object's fields matched")
    checks: dict[str, ArgumentCheck] = Field(default_factory=dict, description="per field: tolerance, contains")

    @field_validator("schema_")
    @classmethod
    def _a_schema(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        # Lint reads a suite twice: the second time (its dataset's warnings), the schema was
        # checked already, and the check's import is most of a warm lint's time.
        if value is not None and not (info.context or {}).get("schemas_checked"):
            from ..prompts.tools import schema_problems

            problems = schema_problems(value, (), strict=False)
            if problems:
                raise ValueError(problems[0][1])
        return value


class ToolCallScorer(_Scorer):
    """The reply calls the tools the case expects (``expected``: ``{name, arguments}``, a list of
    them, or a tool name): F1 over the calls, each matched by name and arguments."""

    type: Literal["tool-call"]
    arguments: Literal["exact", "subset", "ignore"] = Field("subset", description="how arguments must match")
    order: Literal["set", "ordered"] = Field("set", description="whether several calls must come in order")
    checks: dict[str, ArgumentCheck] = Field(default_factory=dict, description="per argument: tolerance, contains")


class NoToolCallScorer(_Scorer):
    """The reply calls no tool."""

    type: Literal["no-tool-call"]


class PythonScorer(_Scorer):
    """A repo-local ``module:function(output, expected, case) -> float | bool``."""

    type: Literal["python"]
    function: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class JudgeScorer(_Scorer):
    """An LLM grades the output against a rubric."""

    type: Literal["llm-judge"]
    rubric: str
    model: ModelSettings | None = None
    repeat: int = Field(1, ge=1, le=100, description="judge calls per output; their agreement is reported")


class EmbeddingScorer(_Scorer):
    """Cosine similarity between output and expected under a local embedding model."""

    type: Literal["embedding"]
    model: str | None = None
    threshold: float = Field(0.8, ge=-1, le=1)


Scorer = Annotated[
    ExactScorer
    | ContainsScorer
    | RegexScorer
    | ChoiceScorer
    | NumericScorer
    | JsonScorer
    | PythonScorer
    | JudgeScorer
    | EmbeddingScorer
    | ToolCallScorer
    | NoToolCallScorer,
    Field(discriminator="type"),
]


class Dataset(_Strict):
    """Cases from a JSONL or CSV file, relative to the suite file and inside the repo."""

    path: str
    vars: dict[str, str] = Field(default_factory=dict, description="prompt variable -> column")
    expected: str | None = Field(None, description="column holding the expected value")
    turns: str | None = Field(None, description="column holding a conversation's user turns (a list)")
    limit: int | None = Field(None, gt=0, description="use only the first N rows")

    @field_validator("path")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if not value.endswith((".jsonl", ".csv")):
            raise ValueError("dataset files must be .jsonl or .csv")
        return value


MAX_TURNS = 100  # user turns one conversation case may script
MAX_TURN_CHARS = 100_000  # characters of one scripted user turn


class Turn(_Strict):
    """One user turn of a conversation case, and what the assistant's reply to it should meet.

    A turn is scored when it has an ``expected`` value or its own ``scorers`` (which replace the
    suite's for that reply); a case none of whose turns is scored has its last reply scored
    against the case's ``expected``."""

    user: str = Field(max_length=MAX_TURN_CHARS, description="what the user says: data, never a template")
    expected: Any = None
    scorers: list[Scorer] | None = Field(None, min_length=1, description="this reply's scorers, instead of the suite's")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"user": data} if isinstance(data, str) else data

    @property
    def scored(self) -> bool:
        return self.expected is not None or self.scorers is not None


class SimulatedUser(_Strict):
    """A second prompt, on its own model, that plays the user once the scripted turns run out.
    Every simulated turn is a model call: at most ``max_turns`` of them per case and repeat."""

    prompt: str = Field(description="NAME or NAME@REV: it reads the conversation as `conversation`, roles swapped")
    model: ModelSettings | None = None
    max_turns: int = Field(3, ge=1, le=20, description="simulated user turns per case, at most")
    stop: str | None = Field(None, description="a regular expression: a simulated turn that matches ends the case")

    @field_validator("stop")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return check_pattern(value) if value is not None else None


class Conversation(_Strict):
    """How a suite's cases run as conversations: turn by turn, each reply fed back."""

    history: str | None = Field(
        None, description="the prompt's messages variable the turns so far go into (default: its only one)"
    )
    user: str | None = Field(
        None,
        description="a prompt variable that takes each user turn; without it, the user turn ends the history",
    )
    score: Literal["all", "mean", "last"] = Field(
        "mean", description="a case's score from its scored turns: the lowest (all), their mean, or the last"
    )
    simulate: SimulatedUser | None = None


class Case(_Strict):
    id: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    turns: list[Turn] | None = Field(
        None, min_length=1, max_length=MAX_TURNS, description="user turns, run one by one (a conversation)"
    )


class Extractor(_Strict):
    """How a reasoning model states its answer (used by ``promptci optimize --method greater``)."""

    phrase: str = Field(description="said after the reasoning, e.g. 'Therefore, the final answer is'")
    answer_format: str = Field(" {answer}", description="how the expected answer follows the phrase")

    @field_validator("answer_format")
    @classmethod
    def _has_answer(cls, value: str) -> str:
        if "{answer}" not in value:
            raise ValueError("answer_format must contain {answer}")
        return value


class Suite(_Strict):
    """One eval suite: which prompts, which cases, how outputs are scored."""

    description: str = ""
    prompts: list[str] = Field(min_length=1, description="NAME or NAME@REV")
    dataset: Dataset | None = None
    cases: list[Case] = Field(default_factory=list)
    scorers: list[Scorer] = Field(min_length=1)
    threshold: float = Field(0.0, ge=0, le=1, description="the suite passes when its mean score reaches this")
    case_threshold: float = Field(1.0, ge=0, le=1, description="a case passes when its score reaches this")
    repeat: int = Field(1, ge=1, le=1_000)
    aggregate: Literal["mean", "k-of-n"] = "mean"
    k: int | None = Field(None, ge=1, le=1_000, description="with aggregate: k-of-n, repeats that must pass")
    model: ModelSettings | None = None
    conversation: Conversation | None = Field(None, description="run cases turn by turn (cases give 'turns')")
    extractor: Extractor | None = None
    tags: list[str] = Field(default_factory=list)
    default: bool = Field(
        True,
        description="false: left out of a bare `promptci eval` (a slow or exploratory suite); it still runs when"
        " named, with --all, and when --changed finds it touched",
    )

    @field_validator("prompts", mode="before")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        if self.dataset is None and not self.cases:
            raise ValueError("a suite needs 'cases' or a 'dataset'")
        if self.aggregate == "k-of-n" and (self.k is None or self.k > self.repeat):
            raise ValueError("aggregate: k-of-n needs k between 1 and repeat")
        if self.dataset is not None and self.dataset.turns is not None and self.conversation is None:
            raise ValueError("a dataset with a turns column runs as a conversation: add 'conversation:'")
        return self

    @property
    def converses(self) -> bool:
        """Whether the cases run as conversations, turn by turn."""
        return self.conversation is not None or any(c.turns for c in self.cases)
