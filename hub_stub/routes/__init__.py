"""The hub's HTTP API, one router per resource; :func:`hub_stub.app.create_app` includes them.

Each module defines ``router`` and plain module-level endpoints that receive the hub's state
(:data:`hub_stub.deps.TheHub`) and the caller (:data:`hub_stub.deps.Who`) as dependencies.
Endpoints are part of the served contract beyond their signatures: FastAPI derives each
OpenAPI operation id from the function's name and each description from its docstring, so
renaming an endpoint or editing its docstring changes ``/openapi.json``.
"""
