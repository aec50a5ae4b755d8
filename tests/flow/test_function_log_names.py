"""On the local cloud each function's JSON log lines carry its own name (issue 18).

The Powertools logger keeps the keys a handler appends (``function_name``, ``function_arn``...) in one
dict per process. In Lambda a process runs one function; on the local cloud all of them share it,
so a line carried whichever function had appended keys last: the ingest function's lines named the
retraining kickoff, the token authorizer's a batch planner.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters import aws
from chalicelib.adapters.aws.tokens import SsmTokenRecords
from chalicelib.auth import TokenStore
from chalicelib.ingest import upload_id_for
from chalicelib.observability import logger
from mlops.datasets import sales_contract, sales_rows, to_csv
from mlops.demo import http
from tests.support import wait_until

DATASET = "log_names"  # the local cloud's state outlives a module: a dataset of its own
APP = "serverless-mlops-local"


class _Lines(logging.Handler):
    """Every line the functions log, as the Powertools formatter writes it, parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines(local_cloud) -> Iterator[list[dict[str, Any]]]:
    capture = _Lines()
    logger._logger.addHandler(capture)
    try:
        yield capture.lines
    finally:
        logger._logger.removeHandler(capture)


def test_each_functions_log_lines_carry_its_own_name(local_cloud, lines):
    settings = bootstrap.settings()
    records = SsmTokenRecords.for_settings(settings)
    viewer, _ = TokenStore(records).create("log-viewer", "viewer", created_by="tests", replace=True)
    admin, _ = TokenStore(records).create("log-admin", "admin", created_by="tests", replace=True)
    api = str(local_cloud.api_url)
    contract = sales_contract({"family": "random_forest", "params": {"n_estimators": 1, "max_depth": 1}})
    contract["dataset"] = DATASET
    contract["training"]["retrain"] = {"min_new_rows": 10_000_000, "cooldown_minutes": 0}  # no run
    assert http("PUT", f"{api}/datasets/{DATASET}/contract", contract, admin)[0] == 200
    # The API and the authorizer, then the event functions, then the API and the authorizer again:
    # each line must name the function that logged it, whichever ran before it. (A retrain request
    # for a dataset with no data is refused, and the API function logs the decision.)
    no_data = {"reason": "log names"}
    assert http("POST", f"{api}/datasets/{DATASET}/retrain", no_data, admin)[0] == 409
    assert http("POST", f"{api}/models/{DATASET}/rollback", {"reason": "r"}, viewer)[0] == 403
    key = f"incoming/{DATASET}/day1.csv"
    put = aws.client("s3").put_object(Bucket=settings.data_bucket, Key=key, Body=to_csv(*sales_rows(40)))
    upload_id = upload_id_for(settings.data_bucket, key, put["VersionId"])
    assert wait_until(lambda: any(line.get("handler") == "kickoff_retraining" for line in lines)), lines
    assert http("GET", f"{api}/uploads/{upload_id}")[0] == 200
    assert http("POST", f"{api}/models/{DATASET}/rollback", {"reason": "r"}, viewer)[0] == 403
    assert http("POST", f"{api}/datasets/{DATASET}_none/retrain", no_data, admin)[0] == 409

    authorizer = [line for line in lines if line["message"] == "authorized"]
    handled = [line for line in lines if line.get("handler")]
    assert len(authorizer) >= 3, lines
    assert {line.get("function_name") for line in authorizer} == {f"{APP}-token_authorizer"}
    assert {line["handler"] for line in handled} >= {"api_handler", "ingest_upload", "kickoff_retraining"}
    assert len([line for line in handled if line["handler"] == "api_handler"]) >= 2, lines
    for line in handled:
        # Chalice names the API function <app>-<stage>, every other <app>-<stage>-<handler>.
        name = APP if line["handler"] == "api_handler" else f"{APP}-{line['handler']}"
        assert line.get("function_name") == name, line
        assert line.get("function_arn", "").endswith(f":function:{name}"), line
