"""Capturing answers: the contract's policy and masking per model (cached), records built and handed
to the sink. /predict (``chalicelib.serving.predict``) calls ``Capturer.capture`` after scoring; the
batch workers call ``Capturer.lines`` and store the shard's object.

Per container, like the predictor's champion pointer: each model's contract is read at most once per
``ttl_s`` (10 s), so a contract change (sampling, capture off, confidential drop -> hash) reaches
every warm container within that time; the hash key is read once (only if a contract needs it).
Capture never fails an answer: any error is logged (without values) and the answer stands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.capture import records as rec
from chalicelib.capture.policy import MonitoringPolicy
from chalicelib.capture.ports import CaptureKey, CaptureSink
from chalicelib.validation.exceptions import NoContract
from chalicelib.validation.ports import ContractStore

CONTRACT_TTL_S = 10.0


@dataclass(frozen=True)
class ModelCapture:
    """What capturing a model's answers needs: its policy and its masking."""

    policy: MonitoringPolicy
    masking: rec.Masking


@dataclass(slots=True)
class Answer:
    """One request's answer as capture sees it. ``outputs``: per record ``{"prediction", ["probabilities"]}``
    (None when the request was refused); ``problems``: the fields at fault per record index (a refused
    request; ``None`` key: the whole request).

    A refused record's inputs lose the fields at fault: a value that failed its field's check may be
    anything (an e-mail address typed into a public field, say), so it is never captured; when the
    refusal did not name every problem, records it did not name keep no input at all."""

    model: str
    version: int
    role: str
    request_id: str
    records: Sequence[Any]
    latency_ms: float
    outputs: Sequence[Mapping[str, Any]] | None = None
    problems: Mapping[int | None, Sequence[str | None]] | None = None
    status: str = "ok"
    row_ids: Sequence[str | None] | None = None
    job_id: str | None = None
    first_index: int = 0
    all_problems_named: bool = True  # False: the refusal named only the first problems


class Capturer:
    def __init__(
        self,
        sink: CaptureSink,
        contracts: ContractStore,
        key: CaptureKey,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = CONTRACT_TTL_S,
        now: Callable[[], str] = rec.now_text,
    ) -> None:
        self.sink = sink
        self.contracts = contracts
        self.key = key
        self.clock = clock
        self.ttl_s = ttl_s
        self.now = now
        self._models: dict[str, tuple[ModelCapture, float]] = {}
        self._lock = threading.Lock()

    def for_model(self, model: str) -> ModelCapture:
        """The model's policy and masking (its contract read at most once per TTL)."""
        now = self.clock()
        cached = self._models.get(model)
        if cached is not None and now - cached[1] < self.ttl_s:
            return cached[0]
        try:
            contract = self.contracts.get(model)
        except NoContract:  # nothing says what its fields are: no input leaves
            found = ModelCapture(MonitoringPolicy(), rec.Masking.nothing())
        else:
            policy = MonitoringPolicy.from_contract(contract)
            key = self.key.key() if rec.Masking.needs_key(contract, policy) else None
            found = ModelCapture(policy, rec.Masking.for_contract(contract, policy, key))
        with self._lock:
            self._models[model] = (found, now)
        return found

    def lines(self, answer: Answer, moment: datetime | None = None) -> list[bytes]:
        """The answer's capture lines ([] when the contract turns capture off); no sampling."""
        setup = self.for_model(answer.model)
        if not setup.policy.capture:
            return []
        return encode_answer(answer, setup.masking, rec.timestamp(moment) if moment else self.now())

    def capture(self, answer: Answer) -> bool:
        """Capture an answer if its model captures and its request id is sampled. Never raises."""
        try:
            setup = self.for_model(answer.model)
            if not setup.policy.capture or not rec.sampled(answer.request_id, setup.policy.sample_rate):
                return False
            self.sink.write(encode_answer(answer, setup.masking, self.now()))
            return True
        except Exception as exc:  # capture never fails the answer
            from chalicelib.observability import logger

            logger.warning("capture skipped", extra={"model": answer.model, "error": type(exc).__name__})
            return False


def encode_answer(answer: Answer, masking: rec.Masking, time_text: str) -> list[bytes]:
    """The capture lines of an answer (its records masked)."""
    outputs = answer.outputs
    problems = answer.problems or {}
    whole = list(problems.get(None, ())) if problems else []
    row_ids = answer.row_ids
    built: list[dict[str, Any]] = []
    for i, record in enumerate(answer.records):
        out = outputs[i] if outputs is not None else None
        faults = problems.get(i) if problems else None
        status = answer.status
        named: list[str] = []
        inputs = masking.inputs(record)
        if outputs is None:
            status = "invalid" if answer.status == "ok" else answer.status
            named = masking.problems([*whole, *(faults or ())])
            if faults is None and not answer.all_problems_named:
                inputs = {}
            for name in [*whole, *(faults or ())]:
                inputs.pop(str(name), None)
        built.append(
            {
                "request_id": answer.request_id,
                "index": answer.first_index + i,
                "row_id": row_ids[i] if row_ids is not None else None,
                "model": answer.model,
                "version": answer.version,
                "role": answer.role,
                "time": time_text,
                "latency_ms": answer.latency_ms,
                "status": status,
                "problems": named,
                "inputs": inputs,
                "prediction": None if out is None else out.get("prediction"),
                "probabilities": None if out is None else out.get("probabilities"),
                "job_id": answer.job_id,
            }
        )
    return rec.encode_lines(built)
