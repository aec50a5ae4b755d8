"""The pure domain: contracts, validation, drift, gates, policies, sharding, training core. No moto,
no AWS, no processes; part of `make check`, run in random order."""
