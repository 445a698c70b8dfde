"""Seeded Speck networks for the backend's tests (docs/speck_backend.md).

``sinabs_style_graph(seed)`` draws a network the way sinabs users write them -- an
optional (possibly rectangular) sum pooling of the DVS input, convolutions each followed
by IF neurons and optionally a 2 x 2 sum pooling, then optionally Flatten + Affine + IF
layers -- as a ``nir.NIRGraph`` (what sinabs exports), so that it goes through the NIR
importer (which composes pooling into the next layer) and the whole compiler.
``ir_network(seed)`` builds IR networks directly with hard resets, binary spikes and
explicit SumPool2d projections. ``MNIST_SPEC`` is sinabs' auto-mapping test network
(tests/test_dynapcnn/test_auto_mapping.py: conv 5x5 / sum-pool / conv 5x5 / sum-pool /
conv 3x3 / sum-pool / Linear 128->500 / Linear 500->10 on 1 x 28 x 28).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nmcompiler import ir

# (kind, args): ("pool", (ky, kx)), ("conv", (c_out, k, stride, padding)),
# ("dense", n_out); every conv and dense is followed by IF neurons
MNIST_SPEC: dict[str, Any] = {
    "input": (1, 28, 28),
    "layers": [("conv", (20, 5, 1, 0)), ("pool", (2, 2)), ("conv", (32, 5, 1, 0)),
               ("pool", (2, 2)), ("conv", (128, 3, 1, 0)), ("pool", (2, 2)),
               ("dense", 500), ("dense", 10)],
}

#: sinabs' large-network test (tests/test_dynapcnn/test_large_net.py, ``DynapCnnNetA``):
#: nine layers on a 2 x 128 x 128 input, every core of the chip used
LARGE_NET_SPEC: dict[str, Any] = {
    "input": (2, 128, 128),
    "layers": [("conv", (16, 2, 2, 0)), ("conv", (16, 3, 1, 1)), ("pool", (2, 2)),
               ("conv", (32, 3, 1, 1)), ("pool", (2, 2)), ("conv", (32, 3, 1, 1)),
               ("pool", (2, 2)), ("conv", (64, 3, 1, 1)), ("pool", (2, 2)),
               ("conv", (64, 3, 1, 1)), ("pool", (2, 2)), ("conv", (256, 2, 1, 0)),
               ("conv", (128, 1, 1, 0)), ("conv", (1, 1, 1, 0))],
}


def random_spec(seed: int) -> dict[str, Any]:
    """A random sinabs-style layer list that fits Speck 2f (seeded)."""
    rng = np.random.default_rng(seed)
    c = int(rng.choice([1, 2]))
    h = int(rng.choice([8, 12, 16]))
    w = h
    layers: list[tuple[str, Any]] = []
    if rng.random() < 0.4:  # DVS pooling, sometimes rectangular
        py, px = [(2, 2), (1, 2), (2, 1), (4, 2)][int(rng.integers(4))]
        h, w = h * py, w * px
        layers.append(("pool", (py, px)))
    size = h // layers[0][1][0] if layers else h
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.choice([1, 3, 5]))
        s = int(rng.choice([1, 1, 2])) if size >= 8 else 1
        p = int(rng.integers(0, k // 2 + 1))
        f = int(rng.integers(2, 9))
        out = (size + 2 * p - k) // s + 1
        if out < 2:
            break
        layers.append(("conv", (f, k, s, p)))
        size = out
        if rng.random() < 0.5 and size % 2 == 0 and size >= 4:
            layers.append(("pool", (2, 2)))
            size //= 2
    if rng.random() < 0.7:
        if layers[-1][0] == "pool" and layers[-1] is layers[0]:
            layers.append(("conv", (4, 3, 1, 1)))
        layers.append(("dense", int(rng.integers(5, 21))))
        if rng.random() < 0.4:
            layers.append(("dense", int(rng.integers(3, 11))))
    elif layers[-1][0] == "pool":
        layers.append(("conv", (3, 1, 1, 0)))
    return {"input": (c, h, w), "layers": layers, "bias": bool(rng.random() < 0.3),
            "seed": seed}


def sinabs_style_graph(spec: dict[str, Any], seed: int = 0) -> Any:
    """The ``nir.NIRGraph`` of a spec (float weights, IF thresholds in sinabs units)."""
    import nir

    rng = np.random.default_rng(seed + 1000)
    c, h, w = spec["input"]
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([c, h, w])})}
    edges = []
    prev = "input"
    shape = (c, h, w)
    flat = False
    for i, (kind, arg) in enumerate(spec["layers"]):
        name = f"l{i}"
        if kind == "pool":
            nodes[name] = nir.SumPool2d(kernel_size=np.array(arg), stride=np.array(arg),
                                        padding=np.array([0, 0]))
            shape = (shape[0], shape[1] // arg[0], shape[2] // arg[1])
            edges.append((prev, name))
            prev = name
            continue
        if kind == "conv":
            f, k, s, p = arg
            wt = rng.normal(0, 1.0 / np.sqrt(shape[0] * k * k), size=(f, shape[0], k, k))
            bias = rng.uniform(0, 0.05, f) if spec.get("bias") else np.zeros(f)
            nodes[name] = nir.Conv2d(input_shape=(shape[1], shape[2]), weight=wt, stride=s,
                                     padding=p, dilation=1, groups=1, bias=bias)
            shape = (f, (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1)
            n = f
            size = shape
        else:
            if not flat:
                fl = f"flat{i}"
                nodes[fl] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
                edges.append((prev, fl))
                prev = fl
                flat = True
            n_in = int(np.prod(shape))
            wt = rng.normal(0, 1.5 / np.sqrt(n_in), size=(arg, n_in))
            bias = rng.uniform(0, 0.05, arg) if spec.get("bias") else np.zeros(arg)
            nodes[name] = nir.Affine(weight=wt, bias=bias)
            shape = (arg,)
            n = arg
            size = shape
        edges.append((prev, name))
        lif = f"if{i}"
        nodes[lif] = nir.IF(r=np.ones(size), v_threshold=np.full(size, float(rng.uniform(
            0.5, 1.5))))
        edges.append((name, lif))
        prev = lif
        del n
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def ir_network(seed: int) -> ir.Network:
    """An IR network with binary spikes, hard or soft resets and an explicit SumPool2d
    projection into its own IF layer (seeded)."""
    rng = np.random.default_rng(seed)
    reset = ir.Reset.HARD if seed % 2 else ir.Reset.SOFT
    net = ir.Network(f"ir{seed}")
    net.input("in", shape=(2, 16, 16))

    def model() -> ir.IF:
        return ir.IF(theta=float(rng.uniform(1.0, 3.0)), reset=reset,
                     fire_at_threshold=True)

    net.population("c1", shape=(4, 16, 16), model=model())
    net.connect("in", "c1", ir.Conv2d(weight=rng.normal(0, 0.6, (4, 2, 3, 3)), padding=(1, 1)),
                delay=0)
    net.population("p1", shape=(4, 8, 8), model=model())
    net.connect("c1", "p1", ir.SumPool2d(kernel=(2, 2)), delay=0)
    net.population("c2", shape=(6, 4, 4), model=model())
    net.connect("p1", "c2", ir.Conv2d(weight=rng.normal(0, 0.5, (6, 4, 3, 3)),
                                      stride=(2, 2), padding=(1, 1)), delay=0)
    net.population("fc", 10, model())
    net.connect("c2", "fc", ir.Dense(weight=rng.normal(0, 0.4, (10, 96))), delay=0)
    net.output("fc")
    return net


def sinabs_float_model(graph: Any, batch_size: int = 1) -> Any:
    """sinabs' own float model of a :func:`sinabs_style_graph` graph (what a sinabs user
    holds before ``DynapcnnNetwork(..., discretize=True)``): Conv2d / Linear, IAFSqueeze
    (``min_v_mem = -threshold``, sinabs' usual lower bound), SumPool2d, Flatten."""
    import sinabs.activation as sa
    import sinabs.layers as sl
    import torch
    import torch.nn as nn

    order = []
    node = "input"
    nxt = {a: b for a, b in graph.edges}
    while node in nxt:
        node = nxt[node]
        order.append(node)
    mods: list[Any] = []
    for name in order:
        n = graph.nodes[name]
        kind = type(n).__name__
        if kind == "Conv2d":
            w = torch.tensor(n.weight, dtype=torch.float32)
            conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]),
                             stride=tuple(np.broadcast_to(n.stride, (2,)).tolist()),
                             padding=tuple(np.broadcast_to(n.padding, (2,)).tolist()),
                             bias=bool(np.any(n.bias)))
            conv.weight.data = w
            if conv.bias is not None:
                conv.bias.data = torch.tensor(n.bias, dtype=torch.float32)
            mods.append(conv)
        elif kind == "Affine":
            lin = nn.Linear(n.weight.shape[1], n.weight.shape[0], bias=bool(np.any(n.bias)))
            lin.weight.data = torch.tensor(n.weight, dtype=torch.float32)
            if lin.bias is not None:
                lin.bias.data = torch.tensor(n.bias, dtype=torch.float32)
            mods.append(lin)
        elif kind == "Flatten":
            mods.append(nn.Flatten())
        elif kind == "SumPool2d":
            mods.append(sl.SumPool2d(kernel_size=tuple(int(x) for x in n.kernel_size)))
        elif kind == "IF":
            thr = float(np.asarray(n.v_threshold).reshape(-1)[0])
            mods.append(sl.IAFSqueeze(batch_size=batch_size, spike_threshold=thr,
                                      min_v_mem=-thr, spike_fn=sa.MultiSpike,
                                      reset_fn=sa.MembraneSubtract()))
    return nn.Sequential(*mods)


def spec_graph(spec: dict[str, Any], seed: int = 0) -> Any:
    """Alias of :func:`sinabs_style_graph` (one name for specs from anywhere)."""
    return sinabs_style_graph(spec, seed)
