"""The node daemon (`worldland daemon`): keeps the node known to the hub and bills its pods.

Modules, in the order data flows through them:

- ``settings``: what the daemon runs with (flags, config.toml, node.json), resolved once;
- ``pods``: what a pod's API object says about its GPUs and when they were held;
- ``slices``: the billing grid (slice k of a pod's interval) and stable event ids;
- ``outbox``: the SQLite outbox (open intervals and unsent events), crash-safe;
- ``meter``: turns what the API says about pods into intervals and slices in the outbox;
- ``podwatch``: list + watch of the pods bound to this node (resourceVersion, bookmarks, 410);
- ``hubaccess``: the hub client the daemon uses (mTLS, or a silent login on a plain hub);
- ``backoff``: exponential backoff with jitter and a cap, for everything that retries;
- ``sender``: sends the outbox to the hub and forgets an event only once the hub has it;
- ``heartbeat``: heartbeats with jitter and backoff, and certificate renewal;
- ``tls``: the node API's TLS identity, reloaded when the certificate is renewed;
- ``api``: the node API (/health, /v1/gpus, /v1/usage) over TLS;
- ``gpus``: live NVML readings and XID errors;
- ``metrics``: /metrics in the Prometheus text format on a local plain-HTTP port;
- ``status``: what the parts report about themselves, read by /health and /metrics;
- ``logs``: one structured line per event on stdout (journald keeps it);
- ``run``: starts the parts, handles SIGTERM, flushes the outbox on the way out.
"""
