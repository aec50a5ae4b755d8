"""Services and entry points without moto: the app's wiring, the CLI on local files, and the stages'
use cases on in-memory adapters. Part of `make check`, run in random order; milliseconds per test."""
