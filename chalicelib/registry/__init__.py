"""The model registry: candidates judged and promoted, versions and their statuses, the audit ledger.

* Domain, pure: ``states`` (statuses, their moves, promotion and rollback rules), ``policy`` (the
  contract's promotion section), ``gates`` and ``metrics`` (the figures a candidate must pass).
* Services: ``evaluator`` (a candidate's manifest -> verify, register, score, gate, decide; with
  ``candidate`` and ``scoring``), ``service`` (the /models API: read, approve, reject, roll back).
* ``ports``: what the services need from outside (the registry store, contracts, artifacts, the
  notifier); ``handler``: the promotion queue's batches, given the ports by the entry point.

Nothing is imported here, so that reading a module (the predict path reads ``states`` through the
registry adapter) does not pay for the gates and the policy.
"""
