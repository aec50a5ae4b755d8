"""Real-time predictions: the champion (or a pinned version) scores JSON records with onnxruntime.

Warm and cold paths (one API Lambda container serves many requests):

* **Sessions**: one ``OnnxModel`` (ONNX session + input schema) per model version, created once per
  container on first use and kept (``MAX_SESSIONS`` versions, the one loaded longest ago dropped). The model
  file is fetched by the S3 version id the registry recorded and verified against its SHA-256 before
  a session is made from it.
* **Champion pointer**: read from the registry and cached for ``CHAMPION_TTL_S`` seconds (default 10,
  ``MLOPS_CHAMPION_TTL_SECONDS`` overrides). A promotion or a rollback is therefore served by every
  warm container within that TTL; a pinned version (``/versions/{v}/predict``) never moves.
* **Rollout pointer**: read and cached the same way (one registry read per model per TTL, none per
  warm request). While a rollout routes traffic (``routing.live_split``) and its champion is the
  champion served, the request's routing key (the body's ``routing_key``, else the request id)
  decides by ``routing.to_candidate`` whether the candidate answers; so a rollout's step, pause or
  abort reaches every warm container within the TTL.
* **Servable versions**: whether each served version may answer (``servable.refusal_reason``: not
  rejected, not tainted by a revoked upload) is cached for the same TTL, on every route, so a version
  rejected or tainted while its session is warm stops answering (409) within that TTL too.
* **Shadow scoring**: when a model has a challenger (``PUT /models/{name}/challenger``), it scores
  the same records after the champion; its predictions are logged beside the champion's (never the
  inputs), never returned, and a challenger failure never fails the request.
* **Capture** (``chalicelib.capture``): with a ``Capturer`` and a request id, every answer is
  captured after scoring (role champion or pinned; the challenger's as shadow; a request refused as
  invalid with the fields at fault), masked by the contract and sampled as its ``monitoring`` section
  says. Capture never fails or changes an answer.

**Rollouts** (``chalicelib.registry.rollout``), on the champion route only (a pinned route never
routes). Every response names the ``version`` that answered and, during a rollout, ``"rollout":
{"id", "arm"}`` (``arm``: ``candidate`` or ``champion``, whichever answered). The rules:

* a request routed to the candidate is answered by it and captured as role ``canary``; the champion
  scores the same records too, captured as role ``shadow`` with the champion's version, so the
  guards (``chalicelib.rollout.guards``) compare the two models on the same inputs. A request the
  champion answers is not scored twice.
* **no request fails because of the candidate**: if it refuses records the champion accepts, fails,
  or gives scores that are not finite, the champion's answer is returned (captured as role
  ``champion``) and the candidate's failure is captured (role ``canary``, status ``invalid`` with the
  fields at fault, or ``error``). A request the champion refuses too is a 400, as without a rollout.
* a candidate that may no longer answer (rejected, tainted) is skipped: the champion answers, and
  nothing is captured for the candidate (it did not fail; it was not asked). A candidate whose
  session cannot be made (a damaged artifact) fails every request routed to it (captured, the
  champion answers), and is tried again once per TTL, not on each of them.
* a request with neither a routing key nor a request id (callers inside the code) is the champion's.

The request: ``{"records": [{feature: value, ...}, ...], "routing_key": "..."?}``, at most
``MAX_RECORDS`` records and ``MAX_BODY_BYTES`` bytes (declared in ``chalicelib.serving.requests``).
Each record is checked against the version's input schema; every problem is reported with the
record's index and the field (``chalicelib.serving.schema``).

The predictor reads through two ports (``chalicelib.serving.ports``): the registry's pointers and
records, and the stored artifacts. ``chalicelib.bootstrap.predictor()`` is this container's one
predictor, wired to the AWS adapters. Imports: numpy, onnxruntime (lazily, in ``model.py``): no
scikit-learn, scipy or pandas.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from chalicelib.capture.service import Answer, Capturer
from chalicelib.errors import Conflict, NotFound, ServingError
from chalicelib.serving import routing, servable
from chalicelib.serving.model import OnnxModel, Scores, load_registered
from chalicelib.serving.ports import ArtifactReader, RegistryReader
from chalicelib.serving.requests import MAX_RECORDS
from chalicelib.serving.schema import InvalidInput

MAX_BODY_BYTES = 1024 * 1024
MAX_SESSIONS = 8
CHAMPION_TTL_S = 10.0
CANARY, SHADOW = "canary", "shadow"


class ModelNotFound(ServingError, NotFound):
    """No such model, version or champion: a 404."""


class NotServable(ServingError, Conflict):
    """The version exists but is not served (rejected, tainted: ``servable.refusal_reason``): a 409."""


def champion_ttl() -> float:
    try:
        return max(0.0, float(os.environ.get("MLOPS_CHAMPION_TTL_SECONDS", CHAMPION_TTL_S)))
    except ValueError:
        return CHAMPION_TTL_S


class Predictor:
    """Per-container state: the registry reader, the champion cache and the session cache."""

    def __init__(
        self,
        registry: RegistryReader,
        artifacts: ArtifactReader,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = MAX_SESSIONS,
        ttl_s: float | None = None,
        capture: Capturer | None = None,
    ) -> None:
        self.registry = registry
        self.capture = capture
        self.artifacts = artifacts
        self.clock = clock
        self.max_sessions = max_sessions
        self.ttl_s = champion_ttl() if ttl_s is None else ttl_s
        # Insertion-ordered: when full, the version loaded longest ago is dropped (a container rarely
        # serves more than the champion, a pinned version or two and a challenger).
        self._sessions: OrderedDict[tuple[str, int], OnnxModel] = OrderedDict()
        self._pointers: dict[tuple[str, str], tuple[Any, float]] = {}
        self._statuses: dict[tuple[str, int], tuple[str | None, float]] = {}
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        # Versions whose session could not be made, with the error and when (the rollout candidate's
        # only): retried once per TTL, not on every request routed to it.
        self._unloadable: dict[tuple[str, int], tuple[Exception, float]] = {}
        self.loads = 0  # sessions created in this container (tests and the cold-start benchmark read it)

    # --- pointers ---------------------------------------------------------------------------------

    def _pointer[T](self, model: str, kind: str, read: Callable[[], T]) -> T:
        now = self.clock()
        cached = self._pointers.get((model, kind))  # a dict read is atomic: no lock on the warm path
        if cached is not None and now - cached[1] < self.ttl_s:
            return cached[0]
        value = read()
        with self._lock:
            self._pointers[(model, kind)] = (value, now)
        return value

    def champion(self, model: str) -> int:
        version = self._pointer(model, "champion", lambda: self.registry.champion(model))
        if version is None:
            # Cached like the pointer: requests for a model without a champion cost no query each.
            if not self._pointer(model, "versions", lambda: len(self.registry.versions(model))):
                raise ModelNotFound(f"no model named {model!r}")
            raise ModelNotFound(f"{model} has no champion yet: no version has been promoted")
        return version

    def challenger(self, model: str) -> int | None:
        return self._pointer(model, "challenger", lambda: self.registry.challenger(model))

    def rollout(self, model: str) -> Split | None:
        """The model's rollout split, if one routes traffic now (its pointer read at most once per TTL)."""
        return self._pointer(model, "rollout", lambda: Split.of(self.registry.rollout(model)))

    def check_servable(self, model: str, version: int) -> None:
        """``NotServable`` if the version (its record read at most once per TTL) may not answer."""
        now = self.clock()
        cached = self._statuses.get((model, version))
        if cached is None or now - cached[1] >= self.ttl_s:
            cached = (servable.refusal_reason(self.registry.version(model, version)), now)
            with self._lock:
                self._statuses[(model, version)] = cached
        if cached[0]:
            raise NotServable(f"{model} v{version} {cached[0]}")

    # --- sessions ---------------------------------------------------------------------------------

    def session(self, model: str, version: int) -> OnnxModel:
        key = (model, version)
        found = self._sessions.get(key)  # warm path: no lock (recency is refreshed on loads only)
        if found is not None:
            return found
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one fetch per version, however many requests arrive at once
            with self._lock:
                found = self._sessions.get(key)
            if found is not None:
                return found
            loaded = self._load(model, version)
            with self._lock:
                self._sessions[key] = loaded
                self.loads += 1
                while len(self._sessions) > self.max_sessions:
                    self._sessions.popitem(last=False)
                self._loading.pop(key, None)
            return loaded

    def _load(self, model: str, version: int) -> OnnxModel:
        doc = self.registry.version(model, version)
        if doc is None:
            if not self.registry.versions(model):
                raise ModelNotFound(f"no model named {model!r}")
            raise ModelNotFound(f"{model} has no version {version}")
        refused = servable.refusal_reason(doc)
        with self._lock:
            self._statuses[(model, version)] = (refused, self.clock())
        if refused:
            raise NotServable(f"{model} v{version} {refused}")
        return load_registered(self.artifacts, doc, f"{model} v{version}")

    # --- predictions ------------------------------------------------------------------------------

    def predict(
        self,
        model: str,
        records: Sequence[Any],
        version: int | None = None,
        request_id: str | None = None,
        routing_key: str | None = None,
    ) -> dict[str, Any]:
        """Score the records; raises ``InvalidInput`` (400), ``ModelNotFound`` (404), ``NotServable``.
        With a ``request_id`` (and a capturer), the answer is captured under it. On the champion
        route, during a rollout, ``routing_key`` (else the request id) picks the version answering."""
        served = version if version is not None else self.champion(model)
        session = self.session(model, served)
        self.check_servable(model, served)  # a warm session of a version rejected since: refused
        if version is not None:
            scores, response = self._answer(model, served, "pinned", session, records, request_id)
            return response
        split = self.rollout(model)
        if split is None or split.champion != served:  # none, or one of another champion (a stale read)
            scores, response = self._answer(model, served, "champion", session, records, request_id)
            self._shadow(model, served, records, session, scores, request_id)
            return response
        key = routing_key if routing_key is not None else request_id
        if key is not None and routing.to_candidate(split.id, split.share, key):
            answered = self._candidate(model, split.candidate, records, request_id)
            if answered is not None:
                response = {"model": model, "version": split.candidate, "predictions": answered.outputs}
                if request_id is not None:
                    response["request_id"] = request_id
                response["rollout"] = {"id": split.id, "arm": "candidate"}
                # The champion scores the same records (role shadow), for the guards' comparison.
                also = self._attempt(model, served, SHADOW, records, request_id, session)
                if also is not None:
                    self._shadow(model, served, records, session, also.scores, request_id, split.candidate)
                return response
        scores, response = self._answer(model, served, "champion", session, records, request_id)
        response["rollout"] = {"id": split.id, "arm": "champion"}
        self._shadow(model, served, records, session, scores, request_id)
        return response

    def _answer(
        self,
        model: str,
        version: int,
        role: str,
        session: OnnxModel,
        records: Sequence[Any],
        request_id: str | None,
    ) -> tuple[Scores, dict[str, Any]]:
        """The version's answer, captured under ``role``; a refusal is captured, then raised (400)."""
        capture = self.capture if request_id is not None else None
        started = time.perf_counter()
        try:
            scores = session.run_finite(session.schema.encode_records(records))
        except InvalidInput as exc:
            if capture is not None and request_id is not None:
                capture.capture(self._refused(model, version, role, request_id, records, exc, started))
            raise
        predictions = format_scores(session, scores)
        latency_ms = (time.perf_counter() - started) * 1000.0
        response: dict[str, Any] = {"model": model, "version": version, "predictions": predictions}
        if request_id is not None:
            response["request_id"] = request_id
        if capture is not None and request_id is not None:
            capture.capture(
                Answer(model, version, role, request_id, records, round(latency_ms, 3), outputs=predictions)
            )
        return scores, response

    def _candidate(
        self, model: str, candidate: int, records: Sequence[Any], request_id: str | None
    ) -> Scored | None:
        """The rollout candidate's answer, or None when the champion must answer instead: the
        candidate may no longer answer (skipped, nothing captured), or it failed (captured)."""
        try:
            self.check_servable(model, candidate)
        except NotServable:
            return None
        except Exception as exc:  # its record could not be read: the champion answers
            self._log_failure("rollout candidate skipped", model, candidate, exc)
            return None
        return self._attempt(model, candidate, CANARY, records, request_id, load_once_per_ttl=True)

    def _attempt(
        self,
        model: str,
        version: int,
        role: str,
        records: Sequence[Any],
        request_id: str | None,
        session: OnnxModel | None = None,
        load_once_per_ttl: bool = False,
    ) -> Scored | None:
        """Score without ever failing the request: the answer, or None after capturing the failure
        (status ``invalid`` with the fields when the version refuses the records or its scores are
        not finite, ``error`` otherwise). Loading a session is not part of the latency. With
        ``load_once_per_ttl``, a session that could not be made is not tried again within the TTL
        (a broken candidate would otherwise fetch and check its artifacts on every request)."""
        started = time.perf_counter()
        try:
            if session is None:
                session = self._session_or_recent_failure(model, version, load_once_per_ttl)
                started = time.perf_counter()
            scores = session.run_finite(session.schema.encode_records(records))
            outputs = format_scores(session, scores)
        except Exception as exc:
            if self.capture is not None and request_id is not None:
                failed = self._refused(model, version, role, request_id, records, exc, started)
                if getattr(exc, "problems", None) is None:
                    failed = replace(failed, status="error")
                self.capture.capture(failed)
            self._log_failure(f"{role} scoring failed", model, version, exc)
            return None
        if self.capture is not None and request_id is not None:
            latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
            self.capture.capture(
                Answer(model, version, role, request_id, records, latency_ms, outputs=outputs)
            )
        return Scored(session, scores, outputs)

    def _session_or_recent_failure(self, model: str, version: int, remember: bool) -> OnnxModel:
        if not remember:
            return self.session(model, version)
        failed = self._unloadable.get((model, version))
        if failed is not None and self.clock() - failed[1] < self.ttl_s:
            raise failed[0]
        try:
            return self.session(model, version)
        except Exception as exc:
            with self._lock:
                self._unloadable[(model, version)] = (exc, self.clock())
            raise

    @staticmethod
    def _log_failure(message: str, model: str, version: int, exc: Exception) -> None:
        from chalicelib.observability import logger

        # Records a version refuses: the fields, not the message (it quotes the values).
        problems = getattr(exc, "problems", None)
        detail: dict[str, Any] = (
            {"error": "records it cannot take", "fields": sorted({str(p.field) for p in problems})}
            if problems is not None
            else {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        )
        logger.warning(message, extra={"model": model, "version": version, **detail})

    @staticmethod
    def _refused(
        model: str,
        version: int,
        role: str,
        request_id: str,
        records: Sequence[Any],
        exc: Exception,
        started: float,
    ) -> Answer:
        problems: dict[int | None, list[str | None]] = {}
        for problem in getattr(exc, "problems", None) or []:
            problems.setdefault(problem.record, []).append(problem.field)
        latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
        named = len(getattr(exc, "problems", None) or []) >= int(getattr(exc, "count", 0) or 0)
        return Answer(
            model, version, role, request_id, records, latency_ms, problems=problems, all_problems_named=named
        )

    def _shadow(
        self,
        model: str,
        champion: int,
        records: Sequence[Any],
        session: OnnxModel,
        scores: Scores,
        request_id: str | None = None,
        candidate: int | None = None,
    ) -> None:
        """The challenger's shadow scoring (not of a version that scored the request already: the
        champion, or the rollout's candidate)."""
        from chalicelib.observability import logger

        challenger: int | None = None
        started = time.perf_counter()
        try:
            challenger = self.challenger(model)
            if challenger is None or challenger in (champion, candidate):
                return
            self.check_servable(model, challenger)  # a rejected challenger is not scored (nor loaded)
            other = self.session(model, challenger)
            started = time.perf_counter()
            shadow = other.run(other.schema.encode_records(records))
        except Exception as exc:  # the challenger never fails the champion's answer
            if self.capture is not None and request_id is not None and challenger is not None:
                refused = self._refused(model, challenger, "shadow", request_id, records, exc, started)
                if getattr(exc, "problems", None) is None:
                    refused = replace(refused, status="error")
                self.capture.capture(refused)
            # Records the challenger refuses: the fields, not the message (it quotes the values).
            problems = getattr(exc, "problems", None)
            detail: dict[str, Any] = (
                {"error": "records it cannot take", "fields": sorted({str(p.field) for p in problems})}
                if problems is not None
                else {"error": str(exc)[:300]}
            )
            logger.warning("shadow scoring skipped", extra={"model": model, **detail})
            return
        if self.capture is not None and request_id is not None:
            latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
            outputs = format_scores(other, shadow)
            self.capture.capture(
                Answer(model, challenger, "shadow", request_id, records, latency_ms, outputs=outputs)
            )
        ours, theirs = _labels(session, scores), _labels(other, shadow)
        logger.info(
            "shadow prediction",
            extra={
                "model": model,
                "champion_version": champion,
                "challenger_version": challenger,
                "records": len(records),
                "agreement": float(np.mean([a == b for a, b in zip(ours, theirs, strict=True)])),
                "champion_predictions": ours[:MAX_RECORDS],
                "challenger_predictions": theirs[:MAX_RECORDS],
            },
        )


@dataclass(frozen=True)
class Split:
    """A rollout routing traffic now (``routing.live_split`` of the registry's rollout pointer)."""

    id: str
    champion: int
    candidate: int
    share: float

    @classmethod
    def of(cls, pointer: Any) -> Split | None:
        found = routing.live_split(pointer)
        return None if found is None else cls(*found)


@dataclass(frozen=True)
class Scored:
    """A version's scores of a request's records, and the predictions formatted for the answer."""

    session: OnnxModel
    scores: Scores
    outputs: list[dict[str, Any]]


def _labels(session: OnnxModel, scores: Scores) -> list[Any]:
    if scores.labels is not None:
        return [_plain(v) for v in scores.labels.tolist()]
    assert scores.predictions is not None
    return [float(v) for v in scores.predictions.tolist()]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def format_scores(session: OnnxModel, scores: Scores) -> list[dict[str, Any]]:
    """Per record: ``prediction`` and, for classifiers, ``probabilities`` by class."""
    if scores.probabilities is None:
        assert scores.predictions is not None
        return [{"prediction": float(v)} for v in scores.predictions.tolist()]
    assert scores.labels is not None
    classes = [str(c) for c in session.classes]
    labels = [_plain(v) for v in scores.labels.tolist()]
    return [
        {"prediction": label, "probabilities": dict(zip(classes, row, strict=True))}
        for label, row in zip(labels, scores.probabilities.tolist(), strict=True)
    ]
