"""Network generators: models built in code from a few parameters (docs/lsm.md)."""
