"""Reading one allowed choice out of free text, the way a careful grader would.

In order:

1. the suite's ``answer_pattern`` (its first group, or the group named ``answer``), where it
   matches;
2. an explicit answer: "Answer: X", "the (final) answer is X", "the correct option is X"; the
   last such marker that a choice follows decides;
3. otherwise every choice the text states. A choice that is negated ("not valid", "X is
   wrong") is not stated; between two complementary choices (valid/invalid, yes/no,
   plausible/implausible, true/false, ...) the negation states the other one. A choice
   followed by a question mark is asked, not stated. A one-letter choice (``a``, ``(B)``)
   counts only where it stands as an option, ``(a)``, ``a)`` or ``a.`` at the start of a line,
   alone, or after an answer marker, never as the English article.

One choice stated: that is the answer. None: no answer. Two different ones: the output is
**ambiguous**, and it scores 0 with that reason, unless the suite asks for ``pick: first`` or
``pick: last``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

COMPLEMENTS = [
    ("plausible", "implausible"),
    ("valid", "invalid"),
    ("possible", "impossible"),
    ("correct", "incorrect"),
    ("likely", "unlikely"),
    ("true", "false"),
    ("yes", "no"),
]

_NEGATED_BEFORE = re.compile(r"(?:\bnot|\bnever|\bno|n't)\s+(?:\w+\s+)?[\"'“‘(]?$", re.IGNORECASE)
_NEGATED_AFTER = re.compile(
    r"[\"'”’)]*\s*(?:is|are|was|were|seems|sounds|would be)\s+(?:not\b|n't\b|wrong|incorrect|false|invalid)",
    re.IGNORECASE,
)
_ASKED = re.compile(r"[^.!\n]*\?")  # the rest of its sentence ends with a question mark
# How far around a choice negation and questions are looked for: every reading stays linear in
# the output's length, whatever a model writes.
_BEFORE, _AFTER, _SENTENCE = 80, 80, 400
_MARKER = re.compile(
    r"\b(?:(?:final|correct|right|best)\s+)?answer\s*(?:is|would be|will be|:|=|-)\s*"
    r"|\b(?:correct|right|best)\s+(?:option|choice|order|one)\s*(?:is|:)\s*",
    re.IGNORECASE,
)
_LETTER = re.compile(r"^\(?([A-Za-z])\)?$")


@dataclass(frozen=True)
class Reading:
    """The choice read (None: none), and how: ``pattern``, ``answer``, ``stated``, ``first``,
    ``last``, ``none`` or ``ambiguous``, with the choices in conflict."""

    choice: str | None
    how: str
    conflict: tuple[str, ...] = ()

    @property
    def note(self) -> str | None:
        if self.how == "ambiguous":
            return "ambiguous: states " + " and ".join(repr(c) for c in self.conflict)
        return None


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    choice: str


def read_choice(
    output: str, choices: Sequence[str], *, pattern: re.Pattern[str] | None = None, pick: str | None = None
) -> Reading:
    """The one choice ``output`` gives, following the rules above."""
    if pattern is not None:
        for match in reversed(list(pattern.finditer(output))):
            group = match.group("answer") if "answer" in pattern.groupindex else match.group(1)
            inner = read_choice(group or "", choices, pick="first")
            if inner.choice is not None:
                return Reading(inner.choice, "pattern")
    mentions = _mentions(output, choices)
    starts = [m.start for m in mentions]
    newlines = [i for i, c in enumerate(output) if c == "\n"]
    for marker in reversed(list(_MARKER.finditer(output))):
        line = bisect.bisect_left(newlines, marker.end())
        segment_end = newlines[line] if line < len(newlines) else len(output)
        first = bisect.bisect_left(starts, marker.end())
        after = mentions[first : first + 1] if first < len(mentions) and starts[first] < segment_end else []
        after += _letters_after_marker(output, choices, marker.end(), segment_end)
        if after:
            return Reading(min(after, key=lambda m: m.start).choice, "answer")
    stated: list[str] = []
    for m in sorted(mentions, key=lambda m: m.start):
        if m.choice not in stated:
            stated.append(m.choice)
    if not stated:
        return Reading(None, "none")
    if len(stated) == 1:
        return Reading(stated[0], "stated")
    if pick in ("first", "last"):
        return Reading(stated[0] if pick == "first" else stated[-1], pick)
    return Reading(None, "ambiguous", tuple(stated))


def _mentions(output: str, choices: Sequence[str]) -> list[_Mention]:
    """Every choice stated in ``output``, negations turned to their complement, questions left out."""
    complement = _complements(choices)
    found: list[_Mention] = []
    for choice in choices:
        for start, end in _spans(output, choice):
            if _ASKED.match(output, end, end + _SENTENCE):
                continue
            negated_before = _NEGATED_BEFORE.search(output, max(0, start - _BEFORE), start)
            if negated_before or _NEGATED_AFTER.match(output, end, end + _AFTER):
                if choice in complement:
                    found.append(_Mention(start, end, complement[choice]))
                continue
            found.append(_Mention(start, end, choice))
    # Where two mentions overlap, the longer one stands ("(A) 01/23/2020" over "01/23/2020").
    kept: list[_Mention] = []
    for m in sorted(found, key=lambda m: (m.start, -(m.end - m.start))):
        if kept and m.start < kept[-1].end:
            continue
        kept.append(m)
    return kept


def _spans(output: str, choice: str) -> list[tuple[int, int]]:
    text = choice.strip()
    if not text:
        return []
    letter = _LETTER.match(text)
    if letter:
        char = re.escape(letter.group(1))
        option = rf"\(\s*{char}\s*\)|(?m:^[ \t]*{char}(?=[).:]|[ \t]*$))|^\W*{char}\W*$"
        return [(m.start(), m.end()) for m in re.finditer(option, output, re.IGNORECASE)]
    left = r"\b" if text[:1].isalnum() else ""
    right = r"\b" if text[-1:].isalnum() else ""
    return [(m.start(), m.end()) for m in re.finditer(left + re.escape(text) + right, output, re.IGNORECASE)]


def _letters_after_marker(output: str, choices: Sequence[str], start: int, end: int) -> list[_Mention]:
    """A one-letter choice right after an answer marker: "the answer is b"."""
    found = []
    for choice in choices:
        letter = _LETTER.match(choice.strip())
        if letter:
            m = re.compile(rf"[\"'“(]?\s*{re.escape(letter.group(1))}\b", re.IGNORECASE).match(output, start, end)
            if m:
                found.append(_Mention(m.start(), m.end(), choice))
    return found


def _complements(choices: Sequence[str]) -> dict[str, str]:
    """For two choices that negate each other, each one's other."""
    if len(choices) != 2:
        return {}
    a, b = choices
    key = (_bare(a), _bare(b))
    if key in COMPLEMENTS or key[::-1] in COMPLEMENTS:
        return {a: b, b: a}
    return {}


def _bare(text: str) -> str:
    return re.sub(r"\W+", "", text).casefold()
