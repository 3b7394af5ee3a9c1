"""Candidate hygiene: what no method scores, and why.

An optimizer model's reply is refused before it costs a single task call when it is

- ``markup``: replacement characters (U+FFFD), chat-template tokens, code fences;
- ``not-instruction``: a bare answer or answer label (``Output:\\nb``, ``A:``, ``The answer
  is "an"``), a case's question copied in, or exemplar lines (``Q: …``, ``Output: …``) that the
  parent did not have;
- ``empty``: fewer than ``min_words`` words;
- ``about-rewrite``: talk about the rewriting instead of the task ("your request", "the
  improved prompt", "here is the new instruction");
- ``copied-meta``: a run of ``meta_run`` words or more shared with the meta-prompt's own
  wording (not with the instructions and cases it quotes);
- ``off-task``: not one word in common with the instruction it replaces, the answer labels or
  the cases' questions (function words aside), and none that says what to do or how to answer
  ("answer", "choose", "the letter"): a list of article titles, a greeting;
- ``unreadable``: symbols the parent did not have (``@``, ``###``, ``$$``), or, under a local
  task model, a log-likelihood per token more than ``likelihood_drop`` nats below the parent's.

The defaults are set on a labelled set of real candidates (``tests/optimize/test_hygiene.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from ..redact import has_control

REASONS = ("markup", "not-instruction", "empty", "about-rewrite", "copied-meta", "off-task", "unreadable")


class Hygiene(BaseModel):
    """The thresholds of candidate hygiene; ``--set METHOD.hygiene={meta_run: 8}`` changes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: int = Field(3, ge=0, description="fewer words than this is an empty candidate")
    meta_run: int = Field(6, ge=2, description="words in a row shared with the meta-prompt's wording that refuse it")
    case_run: int = Field(8, ge=2, description="words in a row shared with a case's question that refuse it")
    new_symbols: int = Field(0, ge=0, description="symbol tokens the parent lacks that are allowed")
    likelihood_drop: float | None = Field(
        0.6, ge=0, description="nats per token below the parent's that make a candidate unreadable (None: off)"
    )


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_MARKUP = re.compile(r"\ufffd|<\|[^|>\s]{1,40}\|>|</?s>|\[/?INST\]|<<SYS>>|```")
_LABEL_LINE = re.compile(r"^\s*(q|a|input|output|question|answer|label|response)\s*:", re.IGNORECASE | re.MULTILINE)
_BARE_ANSWER = re.compile(
    r"^\W*(?:(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|output|label|response)\s*(?:is\b|:|=)|a\s*:)"
    r"\s*\W*(?P<rest>.*?)\W*$",
    re.IGNORECASE | re.DOTALL,
)
_REWRITING = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\byour\s+request\b",
        r"\b(improved|new|revised|updated|rewritten|refined|modified|optimi[sz]ed|better|alternative)"
        r"\s+(version\s+of\s+(the\s+)?)?(prompt|instruction)s?\b",
        r"\b(old|previous|original|current|existing|earlier|initial)\s+(prompt|instruction)s?\b",
        r"\b(provided|given|above)\s+prompts?\b",
        r"\b(here\s+is|here's|here\s+are|below\s+is|the\s+following\s+is)\b[^.\n]{0,40}"
        r"\b(prompt|instruction|version|rewrite)s?\b",
        r"\b(rewrit|rephras|revis|improv|refin)\w*\s+(the\s+|this\s+|your\s+|my\s+)?(prompt|instruction)s?\b",
        r"\bdifferent\s+from\s+(the\s+|all\s+)?(the\s+)?(old|previous|other|above)?\s*(ones|prompts?|instructions?)\b",
        r"\bmeta-?prompt\b",
        r"\b(scores?|accuracy)\s+(of|for)\s+(the\s+|each\s+|this\s+)?(prompt|instruction)s?\b",
        r"\b(the|this|my|an?)\s+instruction\s+(that|is|was|would|should|follows|above|below)\b",
        # a heading over a rewrite: "Improvement: …", "A corrected version:"
        r"^\W*(an?\s+)?(improvement|correction|corrected|revision|revised|updated|new)(\s+version)?\s*:",
        r"\byour\s+task\s+is\s+to\s+(write|generate|create|produce|rewrite)\b",
        r"\b(end|start|beginning)\s+of\s+the\s+prompt\b",
    )
]
# Function words: what a candidate shares with the task does not count these.
_FUNCTION = set(
    "the and for you are with that this your from but not all any can will each one its has have was were been"
    " our out use who how why what when which then than there here into onto about only also just more most some"
    " such very these those they them their should would could must may might shall does did done being after"
    " before over under again other every both few own same too now its it's is be to of in on at by or as an a"
    " if so do no".split()
)
# Words that make a text an instruction whatever the task: what to do, and the form of the answer.
_DIRECTIVE = set(
    "answer answers reply respond say state output write choose pick select decide determine identify classify"
    " label count compute calculate solve judge check compare consider think read explain letter word words"
    " number option options choice choices true false yes step steps carefully question questions sentence"
    " format".split()
)
_NOISE = set("@#$%^~|\\<>{}`§¤¶")
_PLAIN_PUNCT = set("-–—…&/+*=:;,.!?'\"()[]’“”‘")


@dataclass(frozen=True)
class Reference:
    """What a candidate is checked against."""

    meta: str = ""  # the meta-prompt that produced it
    quoted: Sequence[str] = ()  # instructions the meta-prompt quotes: copying them is fine
    questions: Sequence[str] = ()  # the cases' questions: copying them is not
    answers: Iterable[str] = ()  # answer labels and choices
    parent: str | None = None
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def case_grams(self, n: int) -> set[tuple[str, ...]]:
        key = f"case{n}"
        if key not in self._cache:
            self._cache[key] = set().union(*(grams(words(q), n) for q in self.questions))
        found = self._cache[key]
        assert isinstance(found, set)
        return found


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def grams(seq: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}


def verdict(text: str, ref: Reference, limits: Hygiene, fluency: Callable[[str], float] | None = None) -> str | None:
    """The reason ``text`` is refused, or None when it may be scored.

    ``fluency`` gives a text's mean log-likelihood per token under the task model.
    """
    if _MARKUP.search(text) or has_control(text.replace("\r\n", "\n")):
        return "markup"
    tokens = words(text)
    parent = ref.parent or ""
    if _bare_answer(text, tokens, ref) or _new_label_lines(text, parent):
        return "not-instruction"
    if sum(any(ch.isalpha() for ch in w) for w in tokens) < max(1, limits.min_words):
        return "empty"
    if ref.meta and _copies_meta(tokens, ref, limits.meta_run):
        return "copied-meta"
    fresh = grams(tokens, limits.case_run) - grams(words(parent), limits.case_run)
    if fresh & ref.case_grams(limits.case_run):
        return "not-instruction"
    if any(p.search(text) for p in _REWRITING) and not any(p.search(parent) for p in _REWRITING):
        return "about-rewrite"
    if ref.parent and _off_task(tokens, ref):
        return "off-task"
    if len(_new_symbols(text, parent)) > limits.new_symbols:
        return "unreadable"
    drop = limits.likelihood_drop
    if fluency is not None and ref.parent and drop is not None and fluency(text) < fluency(ref.parent) - drop:
        return "unreadable"
    return None


def _bare_answer(text: str, tokens: list[str], ref: Reference) -> bool:
    answers = {" ".join(words(a)) for a in ref.answers} - {""}
    if " ".join(tokens) in answers:
        return True
    m = _BARE_ANSWER.match(text)
    if m is None:
        return False
    rest = words(m.group("rest"))
    return len(rest) <= 2 or " ".join(rest) in answers


def _off_task(tokens: list[str], ref: Reference) -> bool:
    """Whether the candidate's content words meet none of the task's: the parent's, the answer
    labels' and the case questions'."""
    content = {w for w in tokens if w not in _FUNCTION and any(ch.isalpha() for ch in w)}
    if not content or content & _DIRECTIVE:
        return False
    if "task_words" not in ref._cache:  # the same for every candidate of an optimization; the parent is not
        vocab: set[str] = set()
        for answer in ref.answers:
            vocab.update(words(answer))
        for question in ref.questions:
            vocab.update(words(question))
        ref._cache["task_words"] = vocab
    found = ref._cache["task_words"]
    assert isinstance(found, set)
    return not (content & found) and not (content & set(words(ref.parent or "")))


def _new_label_lines(text: str, parent: str) -> bool:
    had = {m.group(1).lower() for m in _LABEL_LINE.finditer(parent)}
    return any(m.group(1).lower() not in had for m in _LABEL_LINE.finditer(text))


def _copies_meta(tokens: list[str], ref: Reference, n: int) -> bool:
    shared = grams(tokens, n) & grams(words(ref.meta), n)
    if not shared:
        return False
    allowed = set().union(*(grams(words(q), n) for q in ref.quoted)) | ref.case_grams(n)
    return bool(shared - allowed)


def _new_symbols(text: str, parent: str) -> set[str]:
    """Whitespace-separated pieces of ``text`` that are symbols, not words, and not in ``parent``."""
    had = set(parent.split())
    found = set()
    for piece in text.split():
        if piece in had:
            continue
        bare = piece.strip("".join(_PLAIN_PUNCT))
        noisy = any(ch in _NOISE for ch in piece)
        no_word = not any(ch.isalnum() for ch in piece) and not set(piece) <= _PLAIN_PUNCT
        repeated = re.search(r"([^\w\s.])\1\1", piece) is not None
        if noisy or no_word or repeated or (bare and not any(ch.isalnum() for ch in bare)):
            found.add(piece)
    return found
