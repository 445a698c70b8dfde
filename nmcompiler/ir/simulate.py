"""The reference simulator: the executable definition of docs/architecture.md#ir-semantics.

float64 (complex128 for resonate-and-fire), vectorised over neurons and over a batch of
input sequences; sparse projections are event-driven (work in proportion to the spikes
sent). Every backend is judged against :func:`simulate`.

Per step ``t`` the populations are evaluated in an order where every zero-delay
projection goes forwards (:func:`nmcompiler.ir.verify.zero_delay_order`); a projection of
delay ``d`` reads what its source sent at ``t - d`` (nothing before step 0). For each population::

    a      = sum_p W_p s_pre[t - d_p]
    u      = alpha_u * u + a
    v*     = lam * v + u + bias           (held at v during a refractory period)
    s      = spike(v*)                    (0 during a refractory period)
    v      = reset(v*, s)

Probes record ``s``, ``u`` and ``v`` after the reset; an LI population's output is ``v``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from .connectivity import AvgPool2d, Conv2d, Dense, OneToOne, Sparse, SumPool2d, as_pair
from .errors import InputError
from .models import Reset, canonical
from .network import Network, Population, Projection
from .verify import verify, zero_delay_order

__all__ = ["simulate", "SimResult", "propagate", "sparse_propagate", "normalise_inputs"]

Kernel = Callable[[np.ndarray], np.ndarray]


@dataclass
class SimResult:
    """What a simulation returns.

    Attributes:
        outputs: per output name, ``(T, B, n)`` spikes (payloads) of a spiking population,
            voltages of an LI readout.
        probes: per probe key ``"pop.var"``, ``(T, B, n)``.
        steps: number of steps simulated.
        batched: whether the inputs had a batch axis (if not, B = 1 and :meth:`get`
            drops it).
    """

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    probes: dict[str, np.ndarray] = field(default_factory=dict)
    steps: int = 0
    batched: bool = False

    def get(self, key: str) -> np.ndarray:
        """An output or probe, without the batch axis when the input had none."""
        arr = self.outputs[key] if key in self.outputs else self.probes[key]
        return arr if self.batched else arr[:, 0]


# ---------------------------------------------------------------------------- synapses
def sparse_propagate(
    indptr: np.ndarray, indices: np.ndarray, weight: np.ndarray, n_post: int, s: np.ndarray
) -> np.ndarray:
    """Event-driven ``(B, n_pre) -> (B, n_post)`` product with a CSR-by-pre matrix."""
    b_idx, pre = np.nonzero(s)
    batch = s.shape[0]
    out_dtype = np.result_type(weight.dtype, s.dtype, np.float64)
    if pre.size == 0:
        return np.zeros((batch, n_post), dtype=out_dtype)
    starts = indptr[pre]
    counts = indptr[pre + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros((batch, n_post), dtype=out_dtype)
    # synapse ids of all active rows: for each row, starts[k] .. starts[k] + counts[k]
    offsets = np.cumsum(counts) - counts
    syn = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, counts)
    vals = weight[syn].astype(out_dtype) * np.repeat(s[b_idx, pre], counts)
    target = indices[syn].astype(np.int64)
    if batch > 1:
        target += np.repeat(b_idx.astype(np.int64) * n_post, counts)
    if out_dtype.kind == "c":
        re = np.bincount(target, weights=vals.real, minlength=batch * n_post)
        im = np.bincount(target, weights=vals.imag, minlength=batch * n_post)
        return (re + 1j * im).reshape(batch, n_post)
    return np.bincount(target, weights=vals, minlength=batch * n_post).reshape(batch, n_post)


def _conv2d(s: np.ndarray, conv: Conv2d, in_shape: tuple[int, ...]) -> np.ndarray:
    batch = s.shape[0]
    c, h, w = in_shape
    x = s.reshape(batch, c, h, w).astype(np.float64)
    ph, pw = as_pair(conv.padding)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    weight = conv.weight.astype(np.float64)
    c_out, c_in_g, kh, kw = weight.shape
    sh, sw = as_pair(conv.stride)
    dh, dw = as_pair(conv.dilation)
    win = np.lib.stride_tricks.sliding_window_view(
        x, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3)
    )[:, :, ::sh, ::sw, ::dh, ::dw]  # (B, C, Ho, Wo, kh, kw)
    g = conv.groups
    o_g = c_out // g
    outs = []
    for k in range(g):
        xs = win[:, k * c_in_g:(k + 1) * c_in_g]
        ws = weight[k * o_g:(k + 1) * o_g]
        outs.append(np.einsum("bchwij,ocij->bohw", xs, ws, optimize=True))
    out = outs[0] if g == 1 else np.concatenate(outs, axis=1)
    return out.reshape(batch, -1)


def _pool(s: np.ndarray, pool: SumPool2d | AvgPool2d, in_shape: tuple[int, ...]) -> np.ndarray:
    batch = s.shape[0]
    c, h, w = in_shape
    x = s.reshape(batch, c, h, w).astype(np.float64)
    ph, pw = as_pair(pool.padding)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = as_pair(pool.kernel)
    sh, sw = as_pair(pool.stride if pool.stride is not None else pool.kernel)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return (win.sum(axis=(-1, -2)) * pool.scale()).reshape(batch, -1)


def _kernels(net: Network, proj: Projection) -> list[tuple[int, Kernel]]:
    """(total delay, function s_pre -> a_post) pairs for one projection."""
    conn = proj.conn
    base = int(proj.delay)
    in_shape = net.shape_of(proj.pre)
    n_post = net.size_of(proj.post)
    if isinstance(conn, Dense):
        w = conn.weight
        if conn.delays is None:
            return [(base, lambda s, w=w: s @ w.T)]
        out = []
        for d in np.unique(conn.delays):
            wd = np.where(conn.delays == d, w, 0)
            out.append((base + int(d), lambda s, wd=wd: s @ wd.T))
        return out
    if isinstance(conn, Sparse):
        if conn.delays is None:
            groups = [(base, conn.indptr, conn.indices, conn.weight)]
        else:
            groups = []
            pre_idx = conn.pre_index()
            for d in np.unique(conn.delays):
                keep = conn.delays == d
                counts = np.bincount(pre_idx[keep], minlength=conn.n_pre)
                indptr = np.zeros(conn.n_pre + 1, dtype=np.int64)
                np.cumsum(counts, out=indptr[1:])
                groups.append((base + int(d), indptr, conn.indices[keep], conn.weight[keep]))
        return [
            (d, lambda s, p=p, i=i, w=w: sparse_propagate(p, i, w, n_post, s))
            for d, p, i, w in groups
        ]
    if isinstance(conn, OneToOne):
        w1 = conn.weight
        if conn.delays is None:
            return [(base, lambda s, w1=w1: s * w1)]
        out = []
        for d in np.unique(conn.delays):
            wd = np.where(conn.delays == d, w1, 0)
            out.append((base + int(d), lambda s, wd=wd: s * wd))
        return out
    if isinstance(conn, Conv2d):
        return [(base, lambda s: _conv2d(s, conn, in_shape))]
    if isinstance(conn, (SumPool2d, AvgPool2d)):
        return [(base, lambda s: _pool(s, conn, in_shape))]
    raise TypeError(type(conn).__name__)  # pragma: no cover - verify rejects it


def propagate(net: Network, proj: Projection, s: np.ndarray) -> np.ndarray:
    """The input one projection gives its target for presynaptic values ``s`` (B, n_pre),
    ignoring delays (all synapses summed)."""
    return sum(k(s) for _, k in _kernels(net, proj))  # type: ignore[return-value]


# ---------------------------------------------------------------------------- neurons
class _PopState:
    __slots__ = ("pop", "p", "u", "v", "refr", "rng", "complex_v")

    def __init__(self, pop: Population, batch: int) -> None:
        self.pop = pop
        self.p = canonical(pop.model)
        lam = np.asarray(self.p["lam"])
        self.complex_v = lam.dtype.kind == "c"
        n = pop.size
        self.u = np.zeros((batch, n))
        self.v = np.zeros((batch, n), dtype=np.complex128 if self.complex_v else np.float64)
        self.refr = np.zeros((batch, n), dtype=np.int64) if self.p["refractory"] else None
        self.rng = None
        if self.p["noise"]:
            seed = [int(self.p["seed"]), zlib.crc32(pop.name.encode())]
            self.rng = np.random.Generator(np.random.PCG64(seed))

    def step(self, a: np.ndarray) -> np.ndarray:
        p = self.p
        alpha_u = p["alpha_u"]
        self.u = self.u * alpha_u + a if np.any(alpha_u) else a.astype(np.float64, copy=True)
        v_star = self.v * p["lam"] + self.u + p["bias"]
        if self.refr is not None:
            in_ref = self.refr > 0
            v_star = np.where(in_ref, self.v, v_star)
        if not p["spiking"]:
            self.v = v_star
            return np.zeros(self.u.shape)
        x = v_star.real if self.complex_v else v_star
        if self.rng is not None:
            x = x + p["noise"] * self.rng.standard_normal(x.shape)
        theta = p["theta"]
        fire = x >= theta if p["fire_at_threshold"] else x > theta
        if self.refr is not None:
            fire &= ~in_ref
        if p["graded"]:
            n = np.clip(np.floor(x / theta), 1, p["graded_max"])
            s = np.where(fire, n, 0.0)
        else:
            s = fire.astype(np.float64)
        reset = p["reset"]
        if reset is Reset.HARD:
            self.v = np.where(fire, p["v_reset"], v_star)
        elif reset is Reset.SOFT:
            self.v = v_star - theta * s
        else:
            self.v = v_star
        if self.refr is not None:
            self.refr = np.where(fire, p["refractory"], np.maximum(self.refr - 1, 0))
        return s


# ---------------------------------------------------------------------------- driver
def normalise_inputs(
    net: Network, inputs: Mapping[str, np.ndarray], steps: int | None
) -> tuple[dict[str, np.ndarray], int, int, bool]:
    """Check ``inputs`` against ``net`` and bring them to ``(T, B, n)``.

    Returns:
        The inputs, the number of steps, the batch size and whether the inputs were batched."""
    unknown = sorted(set(inputs) - set(net.inputs))
    if unknown:
        raise InputError(
            f"input '{unknown[0]}' is not an input of network '{net.name}'",
            obj=unknown[0],
            rule="known input",
            hint="inputs: " + (", ".join(net.inputs) or "none"),
        )
    arrays: dict[str, np.ndarray] = {}
    batched = None
    t_len = None
    batch = 1
    for name, inp in net.inputs.items():
        if name not in inputs:
            continue
        x = np.asarray(inputs[name])
        if x.dtype.kind not in "biuf":
            raise InputError(
                f"input '{name}' has dtype {x.dtype}, expected numbers",
                obj=name,
                rule="numeric input",
                hint="pass spikes as 0/1 integers or floats",
            )
        n = inp.size
        if x.ndim >= 2 and x.shape[1:] in ((n,), inp.shape):
            x = x.reshape(x.shape[0], 1, n)
            this_batched = False
        elif x.ndim >= 3 and x.shape[2:] in ((n,), inp.shape):
            x = x.reshape(x.shape[0], x.shape[1], n)
            this_batched = True
        else:
            raise InputError(
                f"input '{name}' has shape {x.shape}, expected (T, {n}) or (T, B, {n})"
                + (f" or with {inp.shape} in place of {n}" if len(inp.shape) > 1 else ""),
                obj=name,
                rule="input shape",
                need=f"(T, [B,] {n})",
                limit=x.shape,
                hint="time is the first axis, then an optional batch axis",
            )
        if batched is None:
            batched, t_len, batch = this_batched, x.shape[0], x.shape[1]
        elif x.shape[0] != t_len or x.shape[1] != batch:
            raise InputError(
                f"input '{name}' has {x.shape[0]} steps and batch {x.shape[1]}, other inputs "
                f"have {t_len} and {batch}",
                obj=name,
                rule="equal lengths",
                hint="give every input the same number of steps and batch size",
            )
        arrays[name] = x
    if steps is None:
        if t_len is None:
            raise InputError(
                "no inputs given and no number of steps", obj=net.name, rule="steps",
                hint="pass steps=N",
            )
        steps = int(t_len)
    if t_len is not None and steps > t_len:
        raise InputError(
            f"{steps} steps asked for, but the inputs have only {t_len}",
            obj=net.name,
            rule="input length",
            need=steps,
            limit=t_len,
            hint="pad the inputs with zeros or ask for fewer steps",
        )
    return arrays, int(steps), int(batch), bool(batched)


def simulate(
    net: Network,
    inputs: Mapping[str, np.ndarray] | None = None,
    steps: int | None = None,
    *,
    probes: tuple[str, ...] | None = None,
    check: bool = True,
) -> SimResult:
    """Run ``net`` for ``steps`` steps on ``inputs``.

    Args:
        net: the network (verified first unless ``check=False``).
        inputs: per input name, ``(T, n)`` or ``(T, B, n)`` values (spikes, graded
            payloads or analog currents); the trailing ``n`` may be the input's shape.
            Missing inputs are zero.
        steps: steps to run (default: the inputs' length).
        probes: extra probe keys ``"pop.var"`` besides the network's own probes.
        check: verify the network first.

    Returns:
        A :class:`SimResult`.
    """
    if check:
        verify(net)
    arrays, steps, batch, batched = normalise_inputs(net, inputs or {}, steps)
    order = zero_delay_order(net)
    states = {name: _PopState(net.populations[name], batch) for name in order}

    incoming: dict[str, list[tuple[str, int, Kernel]]] = {n: [] for n in order}
    max_delay: dict[str, int] = {n: 0 for n in list(net.inputs) + order}
    for proj in net.projections.values():
        for d, k in _kernels(net, proj):
            incoming[proj.post].append((proj.pre, d, k))
            max_delay[proj.pre] = max(max_delay[proj.pre], d)
    history = {
        name: np.zeros((max_delay[name] + 1, batch, net.size_of(name)))
        for name in max_delay
    }

    keys = [p.key for p in net.probes] + [k for k in (probes or ()) if "." in k]
    result = SimResult(steps=steps, batched=batched)
    for out in net.outputs.values():
        result.outputs[out.name] = np.zeros((steps, batch, net.size_of(out.source)))
    for key in dict.fromkeys(keys):
        target, var = key.rsplit(".", 1)
        if target not in net.populations or var not in ("spikes", "v", "u"):
            raise InputError(
                f"probe '{key}' names no population variable",
                obj=key,
                rule="known probe",
                hint="use 'population.spikes', '.v' or '.u'",
            )
        dtype = np.complex128 if var == "v" and states[target].complex_v else np.float64
        result.probes[key] = np.zeros((steps, batch, net.size_of(target)), dtype=dtype)

    for t in range(steps):
        for name in net.inputs:
            buf = history[name]
            buf[t % buf.shape[0]] = arrays[name][t] if name in arrays else 0.0
        for name in order:
            st = states[name]
            a = np.zeros((batch, st.pop.size))
            for src, d, k in incoming[name]:
                if t - d < 0:
                    continue
                buf = history[src]
                s_pre = buf[(t - d) % buf.shape[0]]
                if s_pre.any():
                    a = a + k(s_pre).real
            s = st.step(a)
            buf = history[name]
            buf[t % buf.shape[0]] = s
        for out in net.outputs.values():
            st = states[out.source]
            result.outputs[out.name][t] = (
                history[out.source][t % history[out.source].shape[0]]
                if st.p["spiking"]
                else st.v.real
            )
        for key, arr in result.probes.items():
            target, var = key.rsplit(".", 1)
            st = states[target]
            if var == "spikes":
                arr[t] = history[target][t % history[target].shape[0]]
            elif var == "v":
                arr[t] = st.v
            else:
                arr[t] = st.u
    return result
