"""The handler a Lambda function's name stands for, as the log lines' ``handler`` key says it."""

from __future__ import annotations

from chalicelib.observability import APP_NAME, handler_name


def test_an_event_function_is_named_after_its_handler():
    assert handler_name(f"{APP_NAME}-dev-ingest_upload", APP_NAME) == "ingest_upload"


def test_the_api_function_has_no_suffix_and_is_the_api_handler():
    assert handler_name(f"{APP_NAME}-prod", APP_NAME) == "api_handler"


def test_a_name_of_another_app_or_none_is_kept_or_unknown():
    assert handler_name("other-function", APP_NAME) == "other-function"
    assert handler_name(None, APP_NAME) == "unknown"
