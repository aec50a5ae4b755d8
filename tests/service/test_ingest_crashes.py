"""No step of the ingest path can strand an upload: a crash after any call to a port, then the
redelivery of the event, ends exactly as the run without the crash did; and a content claim never
makes a later upload the `duplicate` of an upload that did not complete.

The crash points are not listed by hand: every port the ingest service is given (the ledger, the
upload source, the contracts, the outputs, the retrain queue) is wrapped, and a run without a crash
enumerates the calls. Then, for each call in turn, a fresh world runs the same upload and crashes
right after that call returned (so its effect is stored: a write whose answer was lost), and the
event is delivered again. Crashing after every call, reads included, covers every write.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from chalicelib.ingest.service import IngestPorts, ingest
from chalicelib.ingest.uploads import Upload, upload_id_for
from chalicelib.validation import Contract
from chalicelib.validation.layout import quarantine_report_key
from chalicelib.validation.service import ValidationPorts
from tests.service.world import BUCKET, World
from tests.support import GOOD, IRIS

LATER = b"a,label\n1.25,no\n2.75,yes\n3.5,no\n"
BAD = b"a,label\n-1,maybe\n2.5,no\n"
PUBLISHED = ("valid", "invalid")


class Crash(Exception):
    """The injected failure (a network error, a timeout, the function killed)."""


@dataclass
class Injector:
    """Counts the calls to the ports and raises after the ``crash_after``-th one (1-based)."""

    crash_after: int | None = None
    calls: list[str] = field(default_factory=list)

    def after(self, call: str) -> None:
        self.calls.append(call)
        if self.crash_after is not None and len(self.calls) == self.crash_after:
            raise Crash(f"injected after call {len(self.calls)}: {call}")


class Observed:
    """A port whose every method call is reported to the injector after it returned."""

    def __init__(self, name: str, target: Any, injector: Injector) -> None:
        self._name, self._target, self._injector = name, target, injector

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            self._injector.after(f"{self._name}.{attr}")
            return result

        return call


def observed_ports(world: World, injector: Injector) -> IngestPorts:
    def wrap(name: str, port: Any) -> Any:
        return Observed(name, port, injector)

    validation = ValidationPorts(
        contracts=wrap("contracts", world.contracts),
        outputs=wrap("outputs", world.outputs),
        retrain_queue=wrap("retrain_queue", world.queue),
    )
    return IngestPorts(
        ledger=wrap("ledger", world.ledger), source=wrap("source", world.source), validation=validation
    )


def new_world() -> World:
    world = World()
    world.contracts.put(Contract.parse(IRIS))
    return world


@dataclass(frozen=True)
class Scenario:
    """Some history (not crashed), then the upload under test."""

    key: str
    data: bytes
    before: tuple[tuple[str, bytes], ...] = ()
    gone: bool = False  # the object version is deleted before the event is handled


SCENARIOS = {
    "first valid upload (becomes the reference)": Scenario("incoming/iris/day1.csv", GOOD),
    "a later valid upload": Scenario(
        "incoming/iris/day2.csv", LATER, before=(("incoming/iris/day1.csv", GOOD),)
    ),
    "an invalid upload (quarantined)": Scenario("incoming/iris/bad.csv", BAD),
    "an upload the contract cannot be found for": Scenario("incoming/nocontract/x.csv", GOOD),
    "a Unicode key": Scenario("incoming/iris/relevé n°1 🩺 + 50%.csv", GOOD),
    "a quarantined upload named like the report beside it": Scenario("incoming/iris/report.json", BAD),
    "identical bytes to a completed upload": Scenario(
        "incoming/iris/again.csv", GOOD, before=(("incoming/iris/day1.csv", GOOD),)
    ),
    "a key outside incoming/<dataset>/": Scenario("incoming/loose.csv", GOOD),
    "an object gone before it is read": Scenario("incoming/iris/gone.csv", GOOD, gone=True),
}


def prepare(scenario: Scenario) -> tuple[World, dict[str, Any]]:
    world = new_world()
    for key, data in scenario.before:
        world.upload(key, data)
    notification = world.put(scenario.key, scenario.data)
    if scenario.gone:
        world.objects.delete(BUCKET, scenario.key, notification["version_id"])
    return world, notification


def outcome(world: World) -> dict[str, Any]:
    """Everything an ingest leaves, apart from when it was recorded."""
    return {
        "ledger": sorted((_unstamped(u) for u in world.ledger.scan()), key=lambda u: u.upload_id),
        "objects": {key: _content(world, key) for key in world.keys("")},
        "announced": sorted({m["upload_id"] for m in world.queue.receive()}),
    }


def _unstamped(upload: Upload) -> Upload:
    return replace(upload, recorded_at="")


def _content(world: World, key: str) -> Any:
    """An object's bytes; a JSON document without its timing (a report's ``seconds``)."""
    stored = world.objects.get(BUCKET, key)
    assert stored is not None
    if stored.content_type != "application/json":
        return stored.body
    document = json.loads(stored.body)
    return {k: v for k, v in document.items() if k != "seconds"} if isinstance(document, dict) else document


def crash_points(scenario: Scenario) -> tuple[list[str], dict[str, Any]]:
    """The port calls of a run without a crash, and what that run leaves."""
    world, notification = prepare(scenario)
    injector = Injector()
    ingest(notification, observed_ports(world, injector))
    return injector.calls, outcome(world)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_crash_after_any_port_call_then_redelivery_ends_as_the_run_without_the_crash(name: str) -> None:
    scenario = SCENARIOS[name]
    calls, expected = crash_points(scenario)
    assert calls, "the instrumented ports saw no call"
    for point, call in enumerate(calls, start=1):
        world, notification = prepare(scenario)
        with pytest.raises(Crash):
            ingest(notification, observed_ports(world, Injector(crash_after=point)))
        redelivered = ingest(notification, world.ports)
        upload_id = redelivered["upload_id"]
        got = outcome(world)
        assert got == expected, f"crash after call {point} ({call}) left a different outcome"
        assert [u.upload_id for u in got["ledger"]].count(upload_id) == 1
        entry = world.ledger.get(upload_id)
        assert entry is not None
        if entry.status in PUBLISHED:  # one report and one copy, at the keys the entry names
            assert entry.dataset is not None and entry.report_key and entry.output_key
            reports = [k for k in got["objects"] if k.startswith(f"reports/{entry.dataset}/{upload_id}")]
            beside = quarantine_report_key(entry.dataset, upload_id)
            copies = world.keys(f"validated/{entry.dataset}/{upload_id}") + [
                k for k in world.keys(f"quarantine/{entry.dataset}/{upload_id}/") if k != beside
            ]
            assert reports == [entry.report_key] and copies == [entry.output_key]


def test_the_crash_points_include_writes_to_every_store_of_the_ingest_path() -> None:
    calls, _ = crash_points(SCENARIOS["first valid upload (becomes the reference)"])
    stores = {call.split(".")[0] for call in calls}
    assert {"ledger", "outputs", "retrain_queue", "source"} <= stores


# --- identical bytes under another key while the first upload is stranded ----------------------------

FIRST, SECOND = "incoming/iris/day1.csv", "incoming/iris/day1 (copie envoyée deux fois).csv"


def settled(world: World) -> None:
    """Whatever happened, the bytes are in exactly once and nobody is a duplicate of an unfinished upload."""
    entries = world.ledger.scan()
    for entry in entries:
        if entry.status == "duplicate":
            first = world.ledger.get(entry.duplicate_of or "")
            assert first is not None and first.status in PUBLISHED, f"{entry.key} is a duplicate of nothing"
    assert len(world.keys("validated/iris/")) == 1, world.keys("validated/iris/")
    assert len(world.keys("reports/iris/")) == 1
    published = [e for e in entries if e.status in PUBLISHED]
    assert len(published) == 1
    assert {m["upload_id"] for m in world.queue.receive()} <= {published[0].upload_id}


def finished(world: World, first: dict[str, Any], second: dict[str, Any]) -> None:
    ids = {upload_id_for(BUCKET, n["key"], n["version_id"]) for n in (first, second)}
    entries = {e.upload_id: e for e in world.ledger.scan()}
    assert set(entries) == ids
    (owner,) = [e for e in entries.values() if e.status == "valid"]
    (other,) = [e for e in entries.values() if e.status != "valid"]
    assert other.status == "duplicate" and other.duplicate_of == owner.upload_id
    assert world.json(owner.report_key or "")["source"]["key"] == owner.key


def stranded_calls() -> list[str]:
    world = new_world()
    injector = Injector()
    ingest(world.put(FIRST, GOOD), observed_ports(world, injector))
    return injector.calls


@pytest.mark.parametrize(
    "redeliver_first", [True, False], ids=["first redelivered", "first never redelivered"]
)
def test_a_first_upload_crashed_at_any_point_never_makes_the_same_bytes_a_duplicate_of_nothing(
    redeliver_first: bool,
) -> None:
    """The reported silent loss: a claim written before a crash made the same bytes, uploaded again
    under another key, a `duplicate` of an upload with no ledger entry, no report and no copy."""
    for point in range(1, len(stranded_calls()) + 1):
        world = new_world()
        first = world.put(FIRST, GOOD)
        with pytest.raises(Crash):
            ingest(first, observed_ports(world, Injector(crash_after=point)))
        second = world.put(SECOND, GOOD)
        ingest(second, world.ports)
        if redeliver_first:
            ingest(first, world.ports)
        else:  # the first upload's message was lost for good: the bytes still went in, once
            assert world.ledger.get(upload_id_for(BUCKET, SECOND, second["version_id"])) is not None
        settled(world)
        if redeliver_first:
            finished(world, first, second)


def test_the_second_upload_crashed_at_any_point_while_the_first_is_stranded_still_settles_once() -> None:
    claim_point = stranded_calls().index("ledger.claim_content") + 1
    world = new_world()
    probe = Injector()
    stranded = world.put(FIRST, GOOD)
    with pytest.raises(Crash):
        ingest(stranded, observed_ports(world, Injector(crash_after=claim_point)))
    ingest(world.put(SECOND, GOOD), observed_ports(world, probe))
    for point in range(1, len(probe.calls) + 1):
        world = new_world()
        first = world.put(FIRST, GOOD)
        with pytest.raises(Crash):
            ingest(first, observed_ports(world, Injector(crash_after=claim_point)))
        second = world.put(SECOND, GOOD)
        with pytest.raises(Crash):
            ingest(second, observed_ports(world, Injector(crash_after=point)))
        ingest(second, world.ports)
        ingest(first, world.ports)
        settled(world)
        finished(world, first, second)


def test_the_first_uploads_object_gone_after_its_claim_hands_the_bytes_to_the_next_upload() -> None:
    world = new_world()
    first = world.put(FIRST, GOOD)
    claim_point = stranded_calls().index("ledger.claim_content") + 1
    with pytest.raises(Crash):
        ingest(first, observed_ports(world, Injector(crash_after=claim_point)))
    world.objects.delete(BUCKET, FIRST, first["version_id"])  # deleted before its retry
    second = world.put(SECOND, GOOD)
    assert ingest(second, world.ports)["status"] == "valid"
    ingest(first, world.ports)
    gone = world.ledger.get(upload_id_for(BUCKET, FIRST, first["version_id"]))
    assert gone is not None and gone.status == "missing"
    settled(world)


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_uploads_of_the_same_bytes_publish_them_once(round_: int) -> None:
    world = new_world()
    notifications = [world.put(f"incoming/iris/same-{i}.csv", GOOD) for i in range(4)]
    race([lambda n=n: ingest(n, world.ports) for n in notifications])
    settled(world)
    entries = world.ledger.scan()
    assert len(entries) == 4
    (owner,) = [e for e in entries if e.status == "valid"]
    assert owner.drift == "reference"
    assert all(e.duplicate_of == owner.upload_id for e in entries if e is not owner)
