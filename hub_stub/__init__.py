"""Worldland hub stub: a thin but real hub (SIWE, CA, registry, IPAM, transfers, usage).

Thin means few features, not fake ones: signatures are checked, the CA really signs, state
persists in SQLite and every input is validated. The CLI, its tests and the demo run against it.
"""

__version__ = "0.1.0"
