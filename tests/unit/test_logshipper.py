"""The local cloud's log delivery (mlops.logshipper): which lines are capture lines, how they are cut
into PutLogEvents calls, how printed text becomes lines, and that stopping delivers what was queued."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mlops.logshipper import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    CaptureTee,
    LogEvent,
    LogShipper,
    batches,
    is_capture_line,
)


def test_a_capture_line_is_a_json_object_whose_marker_is_the_number_1():
    assert is_capture_line('{"mlops_capture":1,"records":[]}')
    assert is_capture_line('{"records":[{"model":"m"}], "mlops_capture": 1.0}')
    for line in (
        '{"mlops_capture":0,"records":[]}',
        '{"mlops_capture":true}',
        '{"mlops_capture":"1"}',
        '[{"mlops_capture":1}]',
        '{"mlops_capture":1',  # cut short
        "mlops_capture 1",
        '{"level":"INFO","message":"scored"}',
    ):
        assert not is_capture_line(line), line


@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 300_000)), max_size=60))
def test_batches_keep_every_event_once_in_time_order_within_the_limits(spec):
    events = [LogEvent("f", "x" * size, ts) for ts, size in spec]
    cut = batches(events)
    flat = [e for batch in cut for e in batch]
    assert sorted(flat, key=id) == sorted(events, key=id)
    assert [e.timestamp_ms for e in flat] == sorted(e.timestamp_ms for e in events)
    for batch in cut:
        assert batch and len(batch) <= MAX_BATCH_EVENTS
        assert sum(len(e.message.encode()) + EVENT_OVERHEAD for e in batch) <= MAX_BATCH_BYTES


def test_many_small_events_are_cut_at_the_event_count_limit():
    cut = batches([LogEvent("f", "x", i) for i in range(MAX_BATCH_EVENTS + 1)])
    assert [len(b) for b in cut] == [MAX_BATCH_EVENTS, 1]


class _Logs:
    """CloudWatch Logs as the shipper uses it, in memory."""

    class exceptions:  # botocore's spelling
        class ResourceAlreadyExistsException(Exception):
            pass

    def __init__(self) -> None:
        self.groups: set[str] = {"/aws/lambda/app-local"}
        self.events: list[tuple[str, str, str]] = []  # group, stream, message
        self.calls = 0

    def create_log_group(self, logGroupName: str) -> None:
        if logGroupName in self.groups:
            raise self.exceptions.ResourceAlreadyExistsException(logGroupName)
        self.groups.add(logGroupName)

    def create_log_stream(self, logGroupName: str, logStreamName: str) -> None:
        assert logGroupName in self.groups

    def put_log_events(self, logGroupName: str, logStreamName: str, logEvents: list[dict[str, Any]]) -> None:
        self.calls += 1
        stamps = [e["timestamp"] for e in logEvents]
        assert stamps == sorted(stamps)
        self.events += [(logGroupName, logStreamName, e["message"]) for e in logEvents]


def _line(i: int) -> str:
    return json.dumps({"mlops_capture": 1, "records": [{"request_id": f"r{i}"}]}, separators=(",", ":"))


def test_printed_lines_from_several_threads_reach_their_groups_whole_and_stop_delivers_the_rest():
    logs = _Logs()
    shipper = LogShipper(logs, interval_s=5.0).start()  # nothing would be put before stop() but for it
    out = io.StringIO()
    function = threading.local()
    tee = CaptureTee(out, lambda: (shipper, function.name))

    def run(name: str, offset: int) -> None:
        function.name = name
        for i in range(offset, offset + 50):
            print(_line(i), file=tee)  # the line, then its newline: two writes
            tee.write('{"level":"INFO","message":"not a capture line"}\n')
        tee.write(_line(offset + 50)[:10])  # a line in pieces
        tee.write(_line(offset + 50)[10:] + "\n")

    threads = [threading.Thread(target=run, args=(f"app-local{s}", n)) for s, n in (("", 0), ("-x", 100))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shipper.stop()
    assert out.getvalue().count("\n") == 2 * (50 + 50 + 1)  # stdout still gets every line
    assert not shipper.errors
    by_group: dict[str, list[str]] = {}
    for group, _, message in logs.events:
        by_group.setdefault(group, []).append(message)
    assert sorted(by_group["/aws/lambda/app-local"]) == sorted(_line(i) for i in range(51))
    assert sorted(by_group["/aws/lambda/app-local-x"]) == sorted(_line(i) for i in range(100, 151))
    assert shipper.shipped == 102


def test_lines_printed_outside_any_function_are_not_shipped():
    logs = _Logs()
    shipper = LogShipper(logs, interval_s=0.01).start()
    out = io.StringIO()
    inside = threading.local()
    tee = CaptureTee(out, lambda: (shipper, "app-local") if getattr(inside, "yes", False) else None)
    print(_line(1), file=tee)
    inside.yes = True
    print(_line(2), file=tee)
    shipper.stop()
    assert [m for _, _, m in logs.events] == [_line(2)]
    assert out.getvalue() == _line(1) + "\n" + _line(2) + "\n"


def test_flush_waits_until_what_was_printed_is_put():
    logs = _Logs()
    shipper = LogShipper(logs, interval_s=0.05).start()
    tee = CaptureTee(io.StringIO(), lambda: (shipper, "app-local"))
    for i in range(20):
        print(_line(i), file=tee)
    assert shipper.flush(timeout_s=30)
    assert len(logs.events) == 20
    shipper.stop()


def test_a_failed_put_is_reported_and_later_lines_still_ship():
    logs = _Logs()
    failing = [True]
    put = logs.put_log_events

    def flaky(**kwargs: Any) -> None:
        if failing.pop() if failing else False:
            raise RuntimeError("throttled")
        put(**kwargs)

    logs.put_log_events = flaky  # type: ignore[method-assign]
    shipper = LogShipper(logs, interval_s=0.01).start()
    tee = CaptureTee(io.StringIO(), lambda: (shipper, "app-local"))
    print(_line(1), file=tee)
    assert shipper.flush(timeout_s=30)
    print(_line(2), file=tee)
    shipper.stop()
    assert shipper.errors == ["RuntimeError: throttled"]
    assert [m for _, _, m in logs.events] == [_line(2)]
