"""A stand-in for the ``samna`` package, for tests only (docs/speck_backend.md).

samna (SynSense's device runtime) cannot be installed here and must never be imported.
sinabs' ``backend.dynapcnn`` imports it at module load; these tests put this stand-in
under ``sys.modules["samna"]`` first. It provides the configuration objects that sinabs'
``Speck2FConfigBuilder.build_config`` writes into -- plain records with the fields of
samna's ``speck2f.configuration.SpeckConfiguration`` (9 ``cnn_layers`` with two
``destinations`` each, one ``dvs_layer``) -- so that what sinabs writes can be read back.
Everything else (devices, graphs, event buffers, ``validate_configuration``) raises: the
stand-in cannot run a chip, and nothing here pretends to.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["install", "Record", "SpeckConfiguration"]


class Record:
    """An attribute bag that remembers what was written, in order."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict of the fields, nested records converted."""

        def conv(v: Any) -> Any:
            if isinstance(v, Record):
                return v.as_dict()
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        return {k: conv(v) for k, v in self.__dict__.items()}


def _destination() -> Record:
    return Record(layer=0, enable=False, pooling=1, feature_shift=0)


def _cnn_layer() -> Record:
    return Record(dimensions=None, weights=[], biases=[], leak_enable=False,
                  return_to_zero=False, threshold_high=0, threshold_low=0,
                  monitor_enable=False, neurons_initial_value=[],
                  destinations=[_destination(), _destination()])


def _dvs_layer() -> Record:
    return Record(merge=False, mirror={"x": False, "y": False}, mirror_diagonal=False,
                  cut={"x": 127, "y": 127}, origin={"x": 0, "y": 0},
                  pooling={"x": 1, "y": 1}, pass_sensor_events=True, monitor_enable=False,
                  destinations=[_destination(), _destination()])


class SpeckConfiguration(Record):
    """samna.speck2f.configuration.SpeckConfiguration's fields sinabs writes."""

    DVSLayerConfig = staticmethod(_dvs_layer)

    def __init__(self) -> None:
        super().__init__(cnn_layers=[_cnn_layer() for _ in range(9)], dvs_layer=_dvs_layer())


class _Unreachable(types.ModuleType):
    """Any other samna name: importable, unusable (raises when called)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        sub = _Unreachable(f"{self.__name__}.{name}")
        setattr(self, name, sub)
        sys.modules[sub.__name__] = sub
        return sub

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"the samna stand-in cannot run {self.__name__} (no device)")


def install() -> types.ModuleType:
    """Put the stand-in under ``sys.modules["samna"]`` (and ``samnagui``); return it."""
    if isinstance(sys.modules.get("samna"), _Unreachable):
        return sys.modules["samna"]
    root = _Unreachable("samna")
    sys.modules["samna"] = root
    sys.modules["samnagui"] = _Unreachable("samnagui")
    for chip in ("speck2e", "speck2f", "dynapcnn", "speck2b"):
        mod = getattr(root, chip)
        conf = mod.configuration
        conf.SpeckConfiguration = SpeckConfiguration
        conf.DynapcnnConfiguration = SpeckConfiguration
        sys.modules[f"samna.{chip}.configuration"] = conf
    return root
