"""Inference capture: what every prediction leaves behind for monitoring, and the contract's
``monitoring`` section (``chalicelib.capture.policy``).

A stage of its own below serving and above validation: ``/predict`` (serving) and the batch workers
write inference records; the monitor (``chalicelib.monitoring``) reads them. Importing the package
imports nothing heavy; the section's check is registered by ``chalicelib.capture.sections``.
"""
