"""The typed quantisation record (nmcompiler.quantization)."""

from __future__ import annotations

import numpy as np

from nmcompiler import ir
from nmcompiler.api import compile as compile_network
from nmcompiler.quantization import METADATA_KEY, QuantizationInfo


def _net():
    net = ir.Network("q")
    net.input("in", 4)
    net.population("a", 3, ir.LIF(lam=0.9, theta=1.0, bias=0.1))
    net.connect("in", "a", ir.Dense(weight=np.arange(12.0).reshape(3, 4) / 10 - 0.5), delay=1)
    net.output("a")
    return net


def test_record_round_trips_the_stored_dict_and_reads_by_attribute():
    cn = compile_network(_net(), "loihi2")
    meta = cn.network.metadata[METADATA_KEY]
    info = cn.quantization
    assert isinstance(info, QuantizationInfo)
    assert info.to_metadata() == meta
    assert list(info.to_metadata()) == list(meta)  # the same key order: the same bytes
    assert info.family == "loihi" and info.comparison == ">"
    pq = info.projection("in->a")
    assert pq is not None and pq.post == "a" and pq.weight_shift == 6 + pq.weight_exp
    pop = info.population("a")
    assert pop is not None and pop.scale > 0 and pop.du is not None and pop.vth is not None


def test_unquantised_network_has_no_record():
    assert QuantizationInfo.of(_net()) is None
    # a record with the singular section names of older files reads the same
    info = QuantizationInfo.from_metadata({"population": {"a": {"scale": 2.0}}})
    assert info.population("a").scale == 2.0
