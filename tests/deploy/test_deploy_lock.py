"""Two deploys of one stage: the second stops at the shared lock (mlops.deploystate) naming the holder."""

from __future__ import annotations

import pytest


def test_a_deploy_locked_out_leaves_the_other_runs_progress_alone(monkeypatch, tmp_path):
    """A second deploy of a stage stops at the lock and writes nothing into the shared progress."""
    import boto3
    from moto import mock_aws

    from chalicelib.settings import Settings
    from mlops.deploy import Deployment
    from mlops.deploystate import DeployLocked, DeployState

    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        bucket = Settings.for_stage("dev", "serverless-mlops").models_bucket
        session.client("s3").create_bucket(Bucket=bucket)
        state = DeployState(session.client("s3"), bucket, "dev")
        state.lock({"by": "alice", "attempt": "a1"})
        state.save_progress({"attempt": "a1", "steps": {"data-plane": {"status": "done"}}})
        deployment = Deployment("dev", session, runner=lambda *a, **k: "", account_limit=1000)
        deployment.out = tmp_path
        with pytest.raises(DeployLocked, match="alice"):
            deployment.execute()
        assert state.progress() == {"attempt": "a1", "steps": {"data-plane": {"status": "done"}}}
