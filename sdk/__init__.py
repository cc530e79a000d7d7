"""Tooling that keeps the Python client in `sdk/python/` in step with the gateway's routes.

- `python -m sdk.export` writes the gateway's OpenAPI document to `sdk/openapi.json`.
- `python -m sdk.generate` exports it and regenerates `sdk/python/` with openapi-python-client.
- `python -m sdk.check` fails when either differs from what the gateway's code produces now.
"""
