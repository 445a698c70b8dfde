"""Property tests of nmc compare's inputs (docs/compare.md): any file, rate or step count
gives arrays or a named error."""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler.compare import load_inputs, random_inputs, reference_outputs
from nmcompiler.ir import IF, Dense, Network
from nmcompiler.ir.errors import FormatError, UsageError

hypothesis = pytest.importorskip("hypothesis")
given, settings, st = hypothesis.given, hypothesis.settings, hypothesis.strategies


def tiny_network() -> Network:
    net = Network("tiny")
    net.input("in", 12)
    net.population("h", 8, IF(theta=1.0))
    net.connect("in", "h", Dense(weight=np.full((8, 12), 0.4)), delay=1)
    net.output("h")
    return net


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_as_input_file_give_a_format_error_or_arrays(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("npz") / "x.npz"
    p.write_bytes(data)
    try:
        out = load_inputs(p)
    except FormatError as exc:
        assert str(p) in str(exc)
    else:
        assert isinstance(out, dict)


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(allow_nan=True), steps=st.integers(-5, 50))
def test_any_rate_and_steps_give_inputs_or_a_usage_error(rate, steps):
    net = tiny_network()
    try:
        x = random_inputs(net, steps, rate, seed=1)
    except UsageError:
        assert not (0 <= rate <= 1) or steps < 1
    else:
        assert x["in"].shape == (steps, 12) and set(np.unique(x["in"])) <= {0.0, 1.0}
        reference_outputs(net, x, steps)


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 40), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["auto", "loihi2", "sequential"]))
_grid_docs = st.dictionaries(
    st.sampled_from(["targets", "seeds", "steps", "compile", "inputs", "extra"]),
    st.one_of(_values, st.lists(_values, max_size=4),
              st.dictionaries(st.sampled_from(["partitioner", "placer", "weight_bits",
                                               "max_neurons_per_core", "rates", "files",
                                               "x"]),
                              st.one_of(_values, st.lists(_values, max_size=3)),
                              max_size=4)),
    max_size=6).map(lambda d: {k: v for k, v in d.items() if v is not None})


@settings(max_examples=200, deadline=None)
@given(doc=_grid_docs)
def test_any_grid_document_gives_a_grid_or_a_named_usage_error(doc, tmp_path_factory):
    from nmcompiler.sweep import grid_points, parse_grid

    base = tmp_path_factory.mktemp("grid")
    try:
        grid = parse_grid(doc, base)
    except UsageError as exc:
        assert exc.obj and exc.hint
    else:
        pts = grid_points(grid)
        assert len(pts) >= 1 and all(isinstance(s, int) for s in grid.seeds)
        assert all(0 <= (s.rate or 0) <= 1 for s in grid.inputs)
