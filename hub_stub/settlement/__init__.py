"""On-chain settlement: the hub pays providers for metered GPU time (docs/settlement.md).

The worker (:mod:`.worker`) runs as a thread of the hub process when ``--chain-rpc``,
``--payments-contract`` and ``--settler-key-file`` are given. It prices acknowledged usage
rows (:mod:`.ledger`, the database side), checks them against the chain (:mod:`.preflight`),
batches them into ``payments(...)`` transactions signed by a :class:`hub_stub.signer.Signer`,
keeps one sequence of nonces (:mod:`.sender`: write-ahead, rebroadcast, replacement), and
records each row's outcome once its block has enough confirmations. :mod:`.watch` checks
the hot wallet and raises alerts (:mod:`.alerts`); :mod:`.reads` answers the API's
earnings and balance questions; :mod:`.deploy` is ``worldland-hub chain deploy``.
"""
