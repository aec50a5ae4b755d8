"""The ingest function is deployed with the local disk and time the validator counts on
(``chalicelib.validation.capacity.Capacity``): ``.chalice/config.json``, the packaged template and
the post-deploy step agree."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.validation.capacity import Capacity
from mlops import CHALICE_CONFIG, postdeploy
from mlops.appinfo import Function, functions
from mlops.package import merge_template

DEPLOYED_STAGES = ("dev", "prod")
MB = 1000 * 1000  # Lambda's sizes, read as decimal megabytes: the smaller reading
HEADROOM = 1024 * MB  # /tmp beyond the spill, for the runtime and libraries
REPORTING_S = 300  # after validation: hash the rest of the upload, copy it, write the report


@pytest.fixture(scope="module", params=DEPLOYED_STAGES)
def ingest(request: pytest.FixtureRequest) -> tuple[str, list[Function], Function]:
    fns = functions(request.param)
    return request.param, fns, next(f for f in fns if f.name == "ingest_upload")


def test_ingest_function_has_the_disk_and_time_the_validator_counts_on(ingest: Any) -> None:
    _, _, fn = ingest
    capacity = Capacity()
    assert fn.ephemeral_storage is not None and fn.ephemeral_storage <= 10240
    assert fn.ephemeral_storage * MB >= capacity.spill_bytes + HEADROOM, fn.ephemeral_storage
    assert capacity.seconds is not None and fn.timeout >= capacity.seconds + REPORTING_S
    assert fn.batch_size == 1  # the timeout is one upload's, not shared by a batch


def test_packaged_template_sets_the_ephemeral_storage_chalice_cannot(ingest: Any) -> None:
    stage, fns, fn = ingest
    resources = merge_template(stage, "serverless-mlops", fns)["Resources"]
    assert resources[fn.logical_id]["Properties"]["EphemeralStorage"] == {"Size": fn.ephemeral_storage}
    others = [f for f in fns if f.ephemeral_storage is None]
    assert others and all(
        "EphemeralStorage" not in resources[f.logical_id].get("Properties", {}) for f in others
    )


class _Lambda:
    """The Lambda API calls the post-deploy step makes, recorded (moto ignores EphemeralStorage)."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.updates: list[tuple[str, int]] = []
        self.waited: list[str] = []

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {"EphemeralStorage": {"Size": self.sizes[FunctionName]}}

    def get_waiter(self, name: str) -> Any:
        assert name == "function_updated"
        outer = self

        class Waiter:
            def wait(self, FunctionName: str) -> None:
                outer.waited.append(FunctionName)

        return Waiter()

    def update_function_configuration(
        self, FunctionName: str, EphemeralStorage: dict[str, int]
    ) -> dict[str, Any]:
        self.updates.append((FunctionName, EphemeralStorage["Size"]))
        self.sizes[FunctionName] = EphemeralStorage["Size"]
        return {"EphemeralStorage": EphemeralStorage}


def test_postdeploy_sets_the_configured_ephemeral_storage_once() -> None:
    config = json.loads(CHALICE_CONFIG.read_text())
    wanted = config["stages"]["dev"]["lambda_functions"]["ingest_upload"]["lambda_ephemeral_storage"]
    deployed = {
        "resources": [
            {"name": "ingest_upload", "resource_type": "lambda_function", "lambda_arn": "arn:ingest"},
            {"name": "api_handler", "resource_type": "lambda_function", "lambda_arn": "arn:api"},
        ]
    }
    client = _Lambda({"arn:ingest": 512, "arn:api": 512})
    done = postdeploy.set_ephemeral_storage(client, deployed, config, "dev")
    assert client.updates == [("arn:ingest", wanted)] and client.waited == ["arn:ingest"]
    assert [(d["name"], d["change"]) for d in done] == [("ingest_upload", "set")]
    again = postdeploy.set_ephemeral_storage(client, deployed, config, "dev")
    assert [d["change"] for d in again] == ["already set"] and len(client.updates) == 1
