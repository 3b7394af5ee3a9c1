"""promptci as the ``gepa`` library sees it: an adapter that scores candidates and proposes new
texts through the :class:`~.gepa.Gepa` method, the method's choice of component, its events,
and a logger that keeps gepa's lines out of promptci's progress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...evals.dataset import EvalCase


@dataclass
class Adapter:
    """promptci as gepa sees it: a candidate maps components (the instruction, a pipeline's steps, tool
    descriptions) to texts; a data instance is a case."""

    method: Any
    propose_new_texts: Any = None

    def __post_init__(self) -> None:
        self.propose_new_texts = self._propose

    def evaluate(self, batch: list[EvalCase], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa.core.adapter import EvaluationBatch

        scored, traces = self.method.evaluate(batch, candidate, capture_traces)
        scores = [scored.per_case.get(c.id, 0.0) for c in batch]
        outputs = [scored.outputs.get(c.id, "") for c in batch]
        return EvaluationBatch(outputs=outputs, scores=scores, trajectories=traces)

    def make_reflective_dataset(
        self, candidate: dict[str, str], eval_batch: Any, components_to_update: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        return {name: list(eval_batch.trajectories or []) for name in components_to_update}

    def _propose(
        self, candidate: dict[str, str], dataset: Mapping[str, Sequence[Mapping[str, Any]]], components: list[str]
    ) -> dict[str, str]:
        new = {}
        try:
            for name in components:
                text = self.method.reflect(name, candidate, dataset.get(name, []))
                if text is not None:
                    new[name] = text
        except Exception as exc:  # gepa would log it and go on; stop the search and raise it after
            self.method._failure = exc
            return {}
        return new


class Selector:
    """gepa's choice of the component to change, made by the method (blame or turn)."""

    def __init__(self, method: Any) -> None:
        self.method = method

    def __call__(
        self, state: Any, trajectories: list[Any], subsample_scores: list[float], candidate_idx: int, candidate: Any
    ) -> list[str]:
        try:
            return [self.method.component(trajectories, candidate)]
        except Exception as exc:  # as in _propose: raised after gepa's loop
            self.method._failure = exc
            return []


class Events:
    """gepa's callbacks, passed on to the method; the rest are ignored."""

    def __init__(self, method: Any) -> None:
        self.method = method

    def on_iteration_start(self, event: Mapping[str, Any]) -> None:
        self.method.iteration_start(event["iteration"])

    def on_candidate_selected(self, event: Mapping[str, Any]) -> None:
        self.method.selected(event["candidate_idx"])

    def on_merge_attempted(self, event: Mapping[str, Any]) -> None:
        self.method.merging(event["parent_ids"], event["merged_candidate"])

    def on_candidate_accepted(self, event: Mapping[str, Any]) -> None:
        self.method.accepted(event["new_candidate_idx"])

    def on_valset_evaluated(self, event: Mapping[str, Any]) -> None:
        self.method.valset(event["candidate_idx"], event["scores_by_val_id"])

    def on_iteration_end(self, event: Mapping[str, Any]) -> None:
        self.method.iteration_end()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda event: None
        raise AttributeError(name)


class Quiet:
    """gepa's log lines go nowhere: promptci reports progress itself."""

    def log(self, message: str) -> None:
        pass
