"""Stages wired together: the app through chalice's test client on in-process moto (S3 -> SQS ->
handler as the event runtime delivers it), the event runtime on a moto server, and the local cloud
(`mlops up` in-process, one per module)."""
