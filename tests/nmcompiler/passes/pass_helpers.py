"""Targets with modified fields, for the pass tests."""

from __future__ import annotations

import tomllib

from nmcompiler import hw_configs
from nmcompiler.targets import parse_target


def variant(base: str, **sections: dict) -> object:
    """``base``'s target with some fields replaced: ``variant("loihi", core_budget={...})``."""
    doc = tomllib.loads(hw_configs.path(base).read_text())
    for sec, fields in sections.items():
        table = doc.setdefault(sec, {})
        for k, v in fields.items():
            table[k] = v if isinstance(v, dict) else {"value": v, "status": "synthetic",
                                                     "note": "test"}
    doc["real_chip"] = False
    return parse_target(doc, label=f"{base}-test")
