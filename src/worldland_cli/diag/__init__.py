"""Support diagnostics: read-only probes (gpu, network, k8s, certs), the CNI fix, the bundle.

Each probe returns a :class:`~worldland_cli.diag.base.DiagReport`; every step inside it is
bounded by a timeout so a wedged driver or a black-holed hub is reported, not waited on.
"""
