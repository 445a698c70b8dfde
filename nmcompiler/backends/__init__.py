"""Backends: one plugin package per backend, found through the entry-point group
``nmcompiler.backends`` (docs/architecture.md#the-backend-contract)."""
