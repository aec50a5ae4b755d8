"""The ``mlops`` command line: the local cloud, the event runtime, the demo and operations."""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT_DIR / "infra" / "template.yaml"
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
