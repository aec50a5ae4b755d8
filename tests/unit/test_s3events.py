import json
import unicodedata
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.ingest.uploads import dataset_of, upload_id_for
from chalicelib.s3events import MalformedNotification, object_created_events


def _notification(key="incoming%2Firis%2Fday+1.csv", event="ObjectCreated:Put", **obj):
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": event,
                    "eventTime": "2026-11-23T10:00:00.000Z",
                    "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 7, "eTag": "abc", **obj}},
                }
            ]
        }
    )


def test_s3_test_event_yields_no_uploads():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert object_created_events(body) == []


def test_keys_are_decoded_with_unquote_plus():
    (event,) = object_created_events(_notification())
    assert event.key == "incoming/iris/day 1.csv"
    assert (event.bucket, event.size, event.etag, event.version_id) == ("b", 7, "abc", None)


def test_version_id_is_kept_when_s3_sends_it():
    (event,) = object_created_events(_notification(versionId="v1"))
    assert event.version_id == "v1"


def test_records_other_than_object_created_are_ignored():
    assert object_created_events(_notification(event="ObjectRemoved:Delete")) == []


@pytest.mark.parametrize(
    "body, reason",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"hello": "world"}), "no 'Records'"),
        (json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}), "record 0"),
    ],
)
def test_a_body_that_is_not_an_s3_notification_is_malformed(body, reason):
    with pytest.raises(MalformedNotification, match=reason):
        object_created_events(body)


@pytest.mark.parametrize(
    "key, dataset, problem",
    [
        ("incoming/iris/day1.csv", "iris", None),
        ("incoming/iris/2026/11/day1.csv", "iris", None),
        ("incoming/day1.csv", None, "must look like incoming/<dataset>/<file>"),
        ("incoming/iris/", None, "must look like"),
        ("incoming/Iris Data/x.csv", None, "lowercase letters"),
        ("elsewhere/iris/x.csv", None, "is not under incoming/"),
    ],
)
def test_dataset_comes_from_the_key_or_the_problem_is_named(key, dataset, problem):
    found, why = dataset_of(key)
    assert found == dataset
    if problem is None:
        assert why is None
    else:
        assert problem in why


def test_upload_id_is_stable_for_a_version_and_differs_between_versions():
    assert upload_id_for("b", "incoming/x/a.csv", "v1") == upload_id_for("b", "incoming/x/a.csv", "v1")
    assert upload_id_for("b", "incoming/x/a.csv", "v1") != upload_id_for("b", "incoming/x/a.csv", "v2")


# S3 URL-encodes the key in a notification ('+' for a space); moto uses quote_plus, which also
# encodes '/'. Either way the key comes back exactly, whatever it holds.
ENCODINGS = {
    "moto (quote_plus)": lambda key: quote_plus(key),
    "S3 ('/' kept)": lambda key: quote_plus(key, safe="/"),
    "spaces as %20": lambda key: quote(key, safe="/"),
}


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=60),
    form=st.sampled_from(["NFC", "NFD", None]),
    encoding=st.sampled_from(sorted(ENCODINGS)),
)
def test_any_key_comes_back_exactly_from_its_url_encoded_form(
    name: str, form: str | None, encoding: str
) -> None:
    key = "incoming/iris/" + (unicodedata.normalize(form, name) if form else name)
    (event,) = object_created_events(_notification(key=ENCODINGS[encoding](key)))
    assert event.key == key


@pytest.mark.parametrize(
    "encoded, key",
    [
        ("incoming/iris/%C3%A9.csv", "incoming/iris/é.csv"),
        ("incoming/iris/e%CC%81.csv", "incoming/iris/e\u0301.csv"),  # NFD stays NFD
        ("incoming/iris/a+%2B+b%25.csv", "incoming/iris/a + b%.csv"),
        ("incoming/iris/%F0%9F%A9%BA.csv", "incoming/iris/🩺.csv"),
    ],
)
def test_keys_as_s3_encodes_them(encoded: str, key: str) -> None:
    (event,) = object_created_events(_notification(key=encoded))
    assert event.key == key


def test_a_key_whose_encoding_is_not_utf8_is_a_malformed_notification_not_another_key():
    with pytest.raises(MalformedNotification, match=r"^record 0: the key is not URL-encoded UTF-8"):
        object_created_events(_notification(key="incoming/iris/%E9.csv"))
