"""The optimizer models' meta-prompts for OPRO, GPO and TextGrad, and parsing their replies.

Both follow the papers and reference code as summarised in the project's optimizer
notes; where the two disagree (GPO's order of retrieved prompts), the code's choice is
used and stated below.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

OPRO_TAG = "INS"


@dataclass(frozen=True)
class Exemplar:
    question: str
    answer: str


def with_placeholder(question: str, position: str, placeholder: str) -> str:
    """The question as the task model sees it, with the instruction's place marked."""
    if position == "after":
        return f"{question}\n{placeholder}"
    return f"{placeholder}\n{question}"  # system and before


def opro(
    scored: Sequence[tuple[str, float]],
    exemplars: Sequence[Exemplar],
    position: str,
    *,
    top: int = 20,
    hide_below: float = 0.0,
) -> str:
    """OPRO's meta-prompt: the best ``top`` instructions ascending (best last) with 0–100 scores,
    then exemplars with ``<INS>`` at the instruction's position, then the request."""
    best = sorted((s for s in scored if s[1] >= hide_below), key=lambda s: s[1])[-top:]
    parts = [
        "Your task is to generate the instruction <INS>. Below are some previous instructions with their scores."
        " The score ranges from 0 to 100, and higher scores are better.\n"
    ]
    parts += [f"text:\n{text}\nscore:\n{round(score * 100)}\n" for text, score in best]
    parts.append("Below are some problems.\n")
    for ex in exemplars:
        parts.append(f"input:\nQ: {with_placeholder(ex.question, position, '<INS>')}\nA:\noutput:\n{ex.answer}\n")
    parts.append(
        "Generate an instruction that is different from all the instructions <INS> above, and has a higher score"
        " than all the instructions <INS> above. The instruction should begin with <INS> and end with </INS>."
        " The instruction should be concise, effective, and generally applicable to all problems above."
    )
    return "\n".join(parts)


def gpo(
    current: str, retrieved: Sequence[tuple[str, float]], exemplars: Sequence[Exemplar], position: str, edit_words: int
) -> str:
    """GPO's meta-prompt. ``retrieved`` comes current-first, then by descending similarity (the
    reference code's order; the paper sorts ascending by similarity)."""
    parts = [
        "Your task is to write a prompt to replace <Prompt>. Below are previous prompts with their scores"
        " (0 to 100, higher is better).\n"
    ]
    parts += [f"Prompt: {text}\nScore: {round(score * 100)}\n" for text, score in retrieved]
    parts.append(f"The current prompt is: {current}\n")
    parts.append("Below are examples of the task. An output that differs from the expected output is wrong.\n")
    for ex in exemplars:
        parts.append(f"Input:\n{with_placeholder(ex.question, position, '<Prompt>')}\nExpected output:\n{ex.answer}\n")
    parts.append(
        "Analyse the previous prompts and their scores, and how the current prompt leads to wrong outputs on the"
        " examples. Then write an improved prompt that will score higher."
    )
    parts.append(f"You are allowed to change up to {edit_words} words in the current prompt.")
    parts.append("Wrap the new prompt with <START> and <END>.")
    return "\n".join(parts)


def textgrad(current: str, feedback: Sequence[str], exemplars: Sequence[Exemplar], position: str) -> str:
    """TextGrad's update (textual gradient descent): the instruction, the feedback on it from
    failing cases (the textual gradient), and a few examples; the reply is the new instruction."""
    parts = [
        "Here is an instruction that a model follows to answer questions:",
        f"<INS>{current or '(empty)'}</INS>",
        "",
        "Feedback on the answers it led to, from questions the model got wrong:",
    ]
    parts += [f"- {text}" for text in feedback] or ["- (no feedback: every example below was answered correctly)"]
    parts.append("\nExamples of the task, with the instruction's place marked <INS>:\n")
    for ex in exemplars:
        parts.append(f"Input:\n{with_placeholder(ex.question, position, '<INS>')}\nExpected output:\n{ex.answer}\n")
    parts.append(
        "Write an improved instruction that addresses the feedback. Keep what works. Reply with the new"
        " instruction only, between <INS> and </INS>."
    )
    return "\n".join(parts)


def parse(reply: str, opening: str, closing: str) -> str | None:
    """The candidate in an optimizer's reply, or None when it holds none.

    The text between the first ``opening`` and the next ``closing`` tag, as the papers'
    code parses it. Small optimizer models often drop the closing tag or the tags
    altogether, so two fallbacks follow: an opening tag alone runs to the end of its
    paragraph, and a reply of one line with no tag at all is taken whole.
    """
    match = re.search(re.escape(opening) + r"(.*?)" + re.escape(closing), reply, re.DOTALL)
    if match:
        text = match.group(1)
    elif opening in reply:
        text = reply.split(opening, 1)[1].split("\n\n", 1)[0]
    elif "\n" not in reply.strip() and "<" not in reply:
        text = reply
    else:
        return None
    # Control characters (a small model's stray bytes) are no part of an instruction.
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc").strip()
    return text or None


def parse_opro(reply: str) -> str | None:
    return parse(reply, "<INS>", "</INS>")


def parse_gpo(reply: str) -> str | None:
    return parse(reply, "<START>", "<END>")


@dataclass(frozen=True)
class Reflection:
    """One case as GEPA's reflection reads it: the task model's input, its reply, the expected
    answer and the scorer's feedback; for a step of a pipeline before the last, also the
    pipeline's final answer (``expected`` is then the expected final answer)."""

    question: str
    reply: str
    expected: str
    feedback: str
    final: str | None = None


def gepa(current: str, records: Sequence[Reflection], position: str, step: tuple[str, int, int] | None = None) -> str:
    """GEPA's reflection prompt (Agrawal et al., 2026, after the gepa library's default): the
    instruction, the cases it was tried on with replies, expected answers and feedback, failing
    cases first; the reply is the new instruction between ``<INS>`` and ``</INS>``.

    ``step`` (its id, its place from 1, the number of steps) says the instruction is one step
    of a pipeline, whose response feeds the next step."""
    parts = [
        "I gave an assistant the following instruction to perform a task for me:",
        f"<INS>{current or '(empty)'}</INS>",
        "",
    ]
    if step is not None:
        name, place, total = step
        feeds = "its response goes to the next step" if place < total else "its response is the final answer"
        parts += [f'The instruction is step "{name}" ({place} of {total}) of a pipeline: {feeds}.', ""]
    parts += [
        "Here are inputs the assistant was given (the instruction's place is marked <INS>), its response to"
        " each, the expected response, and feedback:",
        "",
    ]
    for i, r in enumerate(records, 1):
        parts += [
            f"Example {i}",
            f"Input:\n{with_placeholder(r.question, position, '<INS>')}",
            f"Assistant's response:\n{r.reply.strip() or '(empty)'}",
        ]
        if r.final is not None:
            parts += [
                f"The pipeline's final answer:\n{r.final.strip() or '(empty)'}",
                f"Expected final answer:\n{r.expected}",
            ]
        else:
            parts.append(f"Expected response:\n{r.expected}")
        parts += [f"Feedback: {r.feedback}", ""]
    parts.append(
        "Your task is to write a new instruction for the assistant. Read the inputs and infer what the task is"
        " and how answers must be written. Read the responses and the feedback: say in the instruction what the"
        " assistant must do differently, and keep what led to correct responses. Write the instruction for"
        " every input of this task, not for these examples. Reply with the new instruction only, between <INS>"
        " and </INS>."
    )
    return "\n".join(parts)


def gepa_tool(name: str, current: str, records: Sequence[Reflection]) -> str:
    """GEPA's reflection prompt for one tool's description: the description, the cases with the
    calls made and expected (failing first) and feedback; the reply is the new description
    between ``<INS>`` and ``</INS>``."""
    parts = [
        f"An assistant can call the tool `{name}`, which it is shown with this description:",
        f"<INS>{current or '(empty)'}</INS>",
        "",
        "Here are requests the assistant was given, the call it made (or its answer), the call expected, and feedback:",
        "",
    ]
    for i, r in enumerate(records, 1):
        parts += [
            f"Example {i}",
            f"Input:\n{r.question}",
            f"Assistant's response:\n{r.reply.strip() or '(empty)'}",
            f"Expected response:\n{r.expected}",
            f"Feedback: {r.feedback}",
            "",
        ]
    parts.append(
        f"Your task is to write a new description of `{name}`: what it does and when to call it, so that the"
        " assistant calls it when, and only when, a request needs it, with the right arguments. Keep what led to"
        " correct calls. Write it for every request, not for these examples. Reply with the new description only,"
        " between <INS> and </INS>."
    )
    return "\n".join(parts)
