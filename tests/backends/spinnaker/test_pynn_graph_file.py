"""network.npz of the PyNN backend: written and read back exactly, bad inputs refused
(docs/spinnaker_backend.md)."""

from __future__ import annotations

import numpy as np
import pytest

from nmcompiler.backends.spinnaker import PyNNBackend
from nmcompiler.backends.spinnaker.lower import CELL_PARAMS, lower_network, read_graph, write_graph
from nmcompiler.ir import IF, LIF, Network, Sparse
from nmcompiler.ir.errors import InputError


def random_network(seed: int) -> Network:
    """Seeded random two-population network with per-synapse delays and recurrence."""
    rng = np.random.default_rng(seed)
    n_a, n_b = (int(v) for v in rng.integers(1, 31, size=2))
    net = Network("h")
    net.input("x", 3)
    alpha = float(rng.choice([0.0, 0.5, 0.8]))
    net.population("a", n_a, LIF(alpha_u=alpha, lam=float(rng.uniform(0.5, 1.0)),
                                 theta=float(rng.uniform(0.5, 5.0)), bias=0.1,
                                 refractory=int(rng.integers(0, 4))))
    net.population("b", n_b, IF(theta=2.0))
    for pre, post, m, n in (("x", "a", 3, n_a), ("a", "b", n_a, n_b), ("b", "a", n_b, n_a)):
        mask = rng.random((n, m)) < 0.4
        q, p = np.nonzero(mask)
        net.connect(pre, post, Sparse.from_coo(pre=p, post=q, weight=rng.normal(size=p.size),
                                               n_pre=m, n_post=n,
                                               delays=rng.integers(0, 3, size=p.size)),
                    delay=int(rng.integers(1, 5)))
    net.output("b")
    return net


@pytest.mark.parametrize("seed", range(25))
def test_graph_round_trip(tmp_path, seed):
    g = lower_network(random_network(seed))
    path = tmp_path / "network.npz"
    write_graph(g, path)
    first = path.read_bytes()
    h = read_graph(path)
    assert [p["name"] for p in h.populations] == [p["name"] for p in g.populations]
    for p, q in zip(g.populations, h.populations, strict=True):
        for k in CELL_PARAMS + ("block",):
            np.testing.assert_array_equal(p[k], q[k])
        assert p["celltype"] == q["celltype"] and p["shift"] == q["shift"]
    for c, d in zip(g.projections, h.projections, strict=True):
        for k in ("pre_idx", "post_idx", "weight", "delay", "nest_delay"):
            np.testing.assert_array_equal(c[k], d[k])
        assert (d["nest_delay"] >= 1).all()
    assert h.outputs == g.outputs and h.inputs == g.inputs
    write_graph(h, path)
    assert path.read_bytes() == first  # deterministic bytes


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("bad", [0, 1, 2, 3])
def test_inputs_checked(steps, ndim, bad):
    names = {"x": 3}
    shape = (steps, 3) if ndim == 2 else (steps, 2, 3)
    a = np.zeros(shape)
    if bad == 1:
        a.flat[0] = 2  # not a spike
    elif bad == 2:
        a = np.zeros(shape[:-1] + (4,))  # wrong width
    elif bad == 3:
        with pytest.raises(InputError):
            PyNNBackend().check_inputs(names, {"y": a}, steps)
        return
    if bad:
        with pytest.raises(InputError):
            PyNNBackend().check_inputs(names, {"x": a}, steps)
    else:
        assert PyNNBackend().check_inputs(names, {"x": a}, steps)["x"].shape == shape
