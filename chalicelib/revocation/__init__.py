"""Revoking an upload: a recorded decision that takes its rows out of training, and what follows in
the registry (``service``). Nothing is imported here (the API imports ``service`` on use)."""
