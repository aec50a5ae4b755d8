"""A validated copy's key names its upload: the API pins a snapshot from keys and the uploads ledger
(``LedgerSnapshotStore``), without reading the objects."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.validation.layout import validated_key, validated_upload

datasets = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
upload_ids = st.from_regex(r"[0-9a-f]{24}", fullmatch=True)


@given(datasets, upload_ids, st.booleans())
def test_the_upload_id_of_a_validated_key_is_the_one_it_was_made_from(dataset, upload_id, gzip):
    assert validated_upload(dataset, validated_key(dataset, upload_id, gzip)) == upload_id


@given(datasets, upload_ids, st.booleans())
def test_another_datasets_key_names_no_upload_of_this_one(dataset, upload_id, gzip):
    assert validated_upload(f"{dataset}-2", validated_key(dataset, upload_id, gzip)) is None


def test_keys_validation_does_not_write_name_no_upload():
    for key in (
        "validated/d/.csv",
        "validated/d/notes/u1.csv",
        "validated/d/u1.json",
        "validated/d/",
        "incoming/d/u1.csv",
        "validated/dd/u1.csv",
    ):
        assert validated_upload("d", key) is None, key
    assert validated_upload("d", "validated/d/u1.csv.gz") == "u1"
