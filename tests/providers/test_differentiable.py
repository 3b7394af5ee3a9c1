"""The differentiable view of the local model, on the real SmolLM2: the one-hot gradient
against finite differences, batches against one sequence at a time, checkpointing, and
gold-token alignment."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptci.providers.differentiable import DifferentiableLM, Scoring

pytestmark = pytest.mark.slow

MARK = "\u2063PROMPT\u2063"
INSTRUCTION = "Answer with one word, plausible or implausible."
SENTENCES = [
    ("Kevin Durant hit a three pointer.", " plausible"),
    ("Joao Moutinho caught the screen pass in the NFC championship.", " implausible"),
    ("Sergio Busquets was flagged for holding in the Stanley Cup final last night.", " implausible"),
]


def load(**options: object) -> DifferentiableLM:
    from promptci.providers import models
    from promptci.providers.local import TransformersProvider

    provider = TransformersProvider(models.resolve(None, Path(".")), device="cpu", dtype="float32")
    return DifferentiableLM(provider, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lm() -> DifferentiableLM:
    return load()


class Case:
    """A sentence laid out around the instruction, with 12 tokens of greedy reasoning and a gold answer."""

    def __init__(self, lm: DifferentiableLM, sentence: str, gold: str) -> None:
        messages = [
            {"role": "system", "content": MARK},
            {"role": "user", "content": f"Is the following sentence plausible?\nSentence: {sentence}\nAnswer:"},
        ]
        self.before, self.after = lm.layout(messages, MARK)
        self.prompt = lm.encode(INSTRUCTION)
        self.extractor = lm.encode(" Therefore, the final answer is")
        self.gold = lm.encode(gold)
        self.reasoning = lm.greedy([self.before + self.prompt + self.after], 12)[0]

    def scoring(self) -> Scoring:
        ids = self.before + self.prompt + self.after + self.reasoning + self.extractor + self.gold
        return Scoring(ids, len(self.before), len(self.prompt), len(ids) - len(self.gold))

    def prefix(self, i: int) -> list[int]:
        return self.before + self.prompt[:i]


def test_the_layout_puts_the_instruction_where_the_chat_template_does(lm: DifferentiableLM) -> None:
    case = Case(lm, *SENTENCES[0])
    messages = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": "x"}]
    text = lm.provider.chat_text(messages)
    assert text.startswith(lm.tokenizer.decode(case.before)) and INSTRUCTION in text
    assert lm.tokenizer.decode(case.before + case.prompt).endswith(INSTRUCTION)
    with pytest.raises(Exception, match="does not appear"):
        lm.layout([{"role": "user", "content": "no mark"}], MARK)


def test_the_one_hot_gradient_matches_finite_differences(lm: DifferentiableLM) -> None:
    import torch

    case = Case(lm, SENTENCES[1][0], SENTENCES[1][1])
    prompt, seq = case.prompt, case.scoring()
    for i in (1, 4):
        candidates = sorted(lm.top_next([case.prefix(i)], 8, [prompt[i - 1]])[0] | {prompt[i]})
        grad = lm.gradient([seq], i, candidates, prompt[i])
        current = candidates.index(prompt[i])
        base = torch.zeros(len(candidates), dtype=torch.float64)
        base[current] = 1.0
        with torch.no_grad():
            eps = 1e-2  # central differences: the error is O(eps^2), float32 noise stays small
            predicted, measured = [], []
            for j in range(len(candidates)):
                if j == current:
                    continue
                direction = torch.zeros(len(candidates), dtype=torch.float64)
                direction[current], direction[j] = -1.0, 1.0
                plus = float(lm.soft_objective([seq], i, candidates, (base + eps * direction).float()))
                minus = float(lm.soft_objective([seq], i, candidates, (base - eps * direction).float()))
                measured.append((plus - minus) / (2 * eps))
                predicted.append(grad[j] - grad[current])
        for p, m in zip(predicted, measured, strict=True):
            assert (p > 0) == (m > 0), (predicted, measured)
            assert abs(p - m) <= 0.03 * abs(m) + 0.01, (predicted, measured)
        rank_p = sorted(range(len(predicted)), key=predicted.__getitem__)
        rank_m = sorted(range(len(measured)), key=measured.__getitem__)
        assert rank_p[0] == rank_m[0] and rank_p[-1] == rank_m[-1]  # the same best and worst candidate
        assert _spearman(predicted, measured) > 0.95


def test_batched_passes_equal_one_sequence_at_a_time(lm: DifferentiableLM) -> None:
    """Right-padded batches of unequal lengths give each sequence its own top-k, objective and
    gradient; the shared one-hot's gradient is the sum of the sequences' gradients."""
    import torch

    cases = [Case(lm, sentence, gold) for sentence, gold in SENTENCES]
    seqs, prompt = [c.scoring() for c in cases], cases[0].prompt
    assert len({len(s.ids) for s in seqs}) > 1  # padding is exercised
    i = 3
    alone = [lm.top_next([c.prefix(i)], 20, [prompt[i - 1]])[0] for c in cases]
    assert lm.top_next([c.prefix(i) for c in cases], 20, [prompt[i - 1]] * 3) == alone
    candidates = sorted(set.union(*alone) | {prompt[i]})
    summed = sum(torch.tensor(lm.gradient([s], i, candidates, prompt[i])) for s in seqs)
    for batch in (2, 8):  # an uneven split into batches, and one batch
        lm.batch = batch
        try:
            together = torch.tensor(lm.gradient(seqs, i, candidates, prompt[i]))
            torch.testing.assert_close(together, summed, atol=2e-3, rtol=1e-3)
            batched = lm.objectives(seqs)
        finally:
            lm.batch = 8
        for (loss, mistake, nll), s in zip(batched, seqs, strict=True):
            one = lm.objectives([s])[0]
            assert mistake == one[1]
            assert loss == pytest.approx(one[0], rel=1e-4) and nll == pytest.approx(one[2], rel=1e-4)


def test_greedy_generation_is_the_providers_own(lm: DifferentiableLM) -> None:
    """Reasoning comes from the same padded, greedy generation the eval engine answers with."""
    from promptci.providers.base import GenParams, Request

    cases = [Case(lm, sentence, gold) for sentence, gold in SENTENCES]
    rows = [c.before + c.prompt + c.after for c in cases]
    assert lm.greedy(rows, 12) == [c.reasoning for c in cases]  # batched or alone, the same tokens
    answers: dict[int, str | None] = {}
    request = Request((("system", INSTRUCTION), ("user", "Is the following sentence plausible?")), GenParams(12, 0.0))
    lm.provider.generate([request], lambda i, c: answers.__setitem__(i, c.text), lambda: False)
    ids = lm.encode(lm.provider.format(request))
    assert answers[0] == lm.decode(lm.greedy([ids], 12)[0]).strip()


def test_gradient_checkpointing_keeps_fewer_activations_and_gives_the_same_gradient(lm: DifferentiableLM) -> None:
    import torch

    case = Case(lm, *SENTENCES[0])
    prompt, seq = case.prompt, case.scoring()
    candidates = sorted(lm.top_next([case.prefix(2)], 10, [prompt[1]])[0] | {prompt[2]})

    def gradient(model: DifferentiableLM) -> tuple[list[float], int]:
        kept = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal kept
            kept += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            grad = model.gradient([seq], 2, candidates, prompt[2])
        return grad, kept

    plain, plain_bytes = gradient(lm)
    lean = load(checkpointing=True)
    try:
        grad, lean_bytes = gradient(lean)
        assert not lean.model.training  # back in eval mode after the pass
    finally:
        lean.model.activation_checkpointing_disable()
    assert lean_bytes < 0.5 * plain_bytes, (lean_bytes, plain_bytes)  # activations are recomputed, not kept
    torch.testing.assert_close(torch.tensor(grad), torch.tensor(plain), atol=1e-4, rtol=1e-4)


def test_gold_tokens_close_the_sequence_and_mistakes_are_argmax_misses(lm: DifferentiableLM) -> None:
    import torch

    case = Case(lm, *SENTENCES[0])
    seq = case.scoring()
    assert seq.ids[seq.start : seq.start + seq.length] == case.prompt
    assert seq.ids[seq.answer_at :] == case.gold and lm.decode(seq.ids[seq.answer_at :]) == " plausible"
    # Teacher-forced: the answer the model itself predicts is no mistake; another one is.
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([seq.ids[: seq.answer_at]])).logits[0, -1]
    own = int(logits.argmax())
    case.gold = [own]
    assert lm.objectives([case.scoring()])[0][1] is False
    case.gold = [own + 1]
    assert lm.objectives([case.scoring()])[0][1] is True


def test_a_remote_model_has_no_gradients() -> None:
    from promptci.errors import InputError

    with pytest.raises(InputError, match="local transformers task model"):
        DifferentiableLM(object())


def _spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[int]:
        order = sorted(range(len(x)), key=x.__getitem__)
        out = [0] * len(x)
        for r, k in enumerate(order):
            out[k] = r
        return out

    ra, rb, n = ranks(a), ranks(b), len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb, strict=True)) / (n * (n * n - 1))
