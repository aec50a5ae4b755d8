"""The adapters that talk to AWS (registry, tokens, runs, batch jobs, queues) on in-process moto, and
the batch worker's instance-metadata client on a fake endpoint. Run in random order."""
