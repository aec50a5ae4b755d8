import json

import pytest

from chalicelib.settings import STAGES, Settings, dlq_name
from mlops import CHALICE_CONFIG


def test_names_follow_prefix_stage_resource_convention():
    settings = Settings.for_stage("dev", prefix="acme-mlops")
    assert settings.data_bucket == "acme-mlops-dev-data"
    assert settings.ingest_queue == "acme-mlops-dev-ingest"
    assert settings.uploads_table == "acme-mlops-dev-uploads"
    assert dlq_name(settings.ingest_queue) == "acme-mlops-dev-ingest-dlq"


def test_stage_and_prefix_come_from_the_environment():
    settings = Settings.from_env({"MLOPS_STAGE": "prod", "MLOPS_PREFIX": "acme"})
    assert settings.stage == "prod"
    assert settings.models_bucket == "acme-prod-models"


def test_environment_variable_overrides_one_name_only():
    settings = Settings.from_env({"MLOPS_STAGE": "dev", "DATA_BUCKET": "my-own-bucket"})
    assert settings.data_bucket == "my-own-bucket"
    assert settings.models_bucket == "serverless-mlops-dev-models"


@pytest.mark.parametrize("stage", STAGES)
def test_chalice_config_carries_the_conventional_names_for_every_stage(stage):
    config = json.loads(CHALICE_CONFIG.read_text())
    env = config["stages"][stage]["environment_variables"]
    expected = Settings.for_stage(stage).environment()
    assert {k: env.get(k) for k in expected} == expected


def test_chalice_app_name_is_serverless_mlops():
    assert json.loads(CHALICE_CONFIG.read_text())["app_name"] == "serverless-mlops"
