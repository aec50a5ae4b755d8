"""moto's state, saved by the local cloud's state store and loaded into an emptied moto, is what it
was: object versions and their bodies, items, queued and in-flight messages (visible again),
parameters with their tags, an asymmetric key that still signs, a Batch job."""

from __future__ import annotations

import boto3
from moto import mock_aws
from moto.core.base_backend import BackendDict

from mlops import localstate


def test_state_saved_and_loaded_into_an_empty_moto_is_the_same(tmp_path):
    with mock_aws(config={"batch": {"use_docker": False}}):
        s3, ddb, sqs = boto3.client("s3"), boto3.client("dynamodb"), boto3.client("sqs")
        ssm, kms = boto3.client("ssm"), boto3.client("kms")
        s3.create_bucket(Bucket="data")
        s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
        v1 = s3.put_object(Bucket="data", Key="incoming/a.csv", Body=b"x\n1\n")["VersionId"]
        v2 = s3.put_object(Bucket="data", Key="incoming/a.csv", Body=b"x\n2\n")["VersionId"]
        s3.put_object(Bucket="data", Key="copy.csv", Body=b"x\n1\n")  # the same bytes: one blob
        ddb.create_table(
            TableName="ledger",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="ledger", Item={"id": {"S": "u1"}, "status": {"S": "valid"}})
        url = sqs.create_queue(QueueName="ingest", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="in flight")
        sqs.send_message(QueueUrl=url, MessageBody="waiting")
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        assert len(received) == 1
        ssm.put_parameter(Name="/tokens/alice", Value="hash", Type="SecureString")
        ssm.add_tags_to_resource(
            ResourceType="Parameter", ResourceId="/tokens/alice", Tags=[{"Key": "role", "Value": "admin"}]
        )
        key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]

        store = localstate.StateStore(tmp_path / "state")
        snapshot, blobs = store.dump()
        store.write(snapshot, blobs)
        assert len(blobs) == 2 and len(list(store.blobs.iterdir())) == 2  # bodies by content, once

        BackendDict.reset()
        assert s3.list_buckets()["Buckets"] == []  # moto is empty now

        saved = store.load()
        localstate.restore_backends(saved)
        assert localstate.requeue_in_flight(saved) == 1

        assert s3.get_object(Bucket="data", Key="incoming/a.csv", VersionId=v1)["Body"].read() == b"x\n1\n"
        assert s3.get_object(Bucket="data", Key="incoming/a.csv")["VersionId"] == v2
        assert s3.get_object(Bucket="data", Key="incoming/a.csv")["Body"].read() == b"x\n2\n"
        assert s3.get_object(Bucket="data", Key="copy.csv")["Body"].read() == b"x\n1\n"
        item = ddb.get_item(TableName="ledger", Key={"id": {"S": "u1"}})["Item"]
        assert item["status"]["S"] == "valid"
        bodies = sorted(
            m["Body"]
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])[
                "Messages"
            ]
        )
        assert bodies == ["in flight", "waiting"]  # the received one is delivered again
        assert ssm.get_parameter(Name="/tokens/alice", WithDecryption=True)["Parameter"]["Value"] == "hash"
        tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/tokens/alice")["TagList"]
        assert tags == [{"Key": "role", "Value": "admin"}]
        signature = kms.sign(KeyId=key, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
        assert kms.verify(
            KeyId=key, Message=b"m", Signature=signature, SigningAlgorithm="RSASSA_PSS_SHA_256"
        )["SignatureValid"]

        # Saved again, the bodies already on disk are not written again.
        _, new_blobs = store.dump()
        assert new_blobs == {}
        assert store.collect_garbage(store.loaded_digests) == 0


def test_a_batch_job_survives_as_it_was(tmp_path):
    from chalicelib.settings import Settings
    from mlops.cfn import deploy_stage

    with mock_aws(config={"batch": {"use_docker": False}}):
        deploy_stage(Settings.for_stage("local"))
        batch = boto3.client("batch")
        queue = batch.describe_job_queues()["jobQueues"][0]["jobQueueName"]
        definition = batch.describe_job_definitions()["jobDefinitions"][0]["jobDefinitionArn"]
        job = batch.submit_job(jobName="j1", jobQueue=queue, jobDefinition=definition)["jobId"]
        store = localstate.StateStore(tmp_path / "state")
        store.write(*store.dump())
        BackendDict.reset()
        localstate.restore_backends(store.load())
        described = batch.describe_jobs(jobs=[job])["jobs"]
        assert [j["jobName"] for j in described] == ["j1"]


def test_a_snapshot_is_not_held_up_by_a_long_poll_in_progress(tmp_path):
    """A ReceiveMessage waiting for messages (up to 20 s) holds no lock while it waits: a change
    made meanwhile is saved and answered, and the poll still gets the message sent after."""
    import threading

    from moto.sqs.models import Queue

    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="polled")["QueueUrl"]
        committer = localstate.Committer(localstate.StateStore(tmp_path / "state")).start()
        waiting = threading.Event()
        real_wait = Queue.wait_for_messages

        def wait_for_messages(self: Queue, timeout: float) -> None:
            waiting.set()
            real_wait(self, timeout)

        Queue.wait_for_messages = wait_for_messages
        localstate.hold_receives(committer)
        got: list[object] = []
        try:
            poll = threading.Thread(
                target=lambda: got.extend(
                    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])
                )
            )
            poll.start()
            assert waiting.wait(60)  # the poll is between passes
            with committer.changing():
                sequence = committer.finished_write()
            assert committer.wait_durable(sequence, timeout_s=60)
            assert poll.is_alive()  # saved while the poll still waits
            sqs.send_message(QueueUrl=url, MessageBody="late")
            poll.join(60)
            assert [m["Body"] for m in got] == ["late"]  # type: ignore[index]
        finally:
            localstate.hold_receives(None)
            Queue.wait_for_messages = real_wait
            committer.stop()


def test_a_state_that_cannot_be_loaded_is_refused_with_what_to_do(tmp_path):
    import pickle

    import pytest

    store = localstate.StateStore(tmp_path / "state")
    store.directory.mkdir()
    store.snapshot_path.write_bytes(b"not a pickle")
    with pytest.raises(localstate.StateUnreadable, match="mlops up --fresh"):
        store.load()
    store.snapshot_path.write_bytes(pickle.dumps({"format": localstate.FORMAT + 1, "backends": {}}))
    with pytest.raises(localstate.StateUnreadable, match=r"another version.*mlops up --fresh"):
        store.load()
