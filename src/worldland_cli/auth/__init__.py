"""Wallet key files, SIWE login and the session, node certificates and node registration.

Entry points other areas use:

- :func:`worldland_cli.auth.relogin.authenticated_client`: a HubClient with a live bearer
  token (silently logging in again when a wallet key file is configured);
  :func:`worldland_cli.auth.relogin.live_session` when only the token is needed;
- :func:`worldland_cli.auth.certs.ensure_certificate`: issue, keep or renew the node's mTLS
  certificate (the daemon calls it periodically);
- :func:`worldland_cli.auth.node.load_node`: the node id saved by ``worldland register``;
- :mod:`worldland_cli.auth.provider`: the register and certificate workflows the ``register``
  and ``certs`` commands (and later ``join``) run.
"""
