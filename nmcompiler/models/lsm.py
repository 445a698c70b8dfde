"""Liquid State Machine: a fixed random spiking reservoir and a ridge-regression readout.

Follows Maass, Natschläger & Markram (2002), "Real-time computing without stable states:
a new framework for neural computation based on perturbations" (Neural Computation
14(11)), as summarised in docs/lsm.md: the reservoir (the "liquid") is generated once and
never trained -- sparse random input weights, sparse *binary* recurrent weights, fixed
neuron parameters -- its states are recorded, and only a linear readout is trained on
them, in closed form; the readout can be re-trained on new targets from the recorded
states without running the reservoir again.

What :func:`build_lsm` makes (an :class:`nmcompiler.ir.Network`):

* one population ``"reservoir"`` of CUBA LIF neurons whose shape is the 3-D grid
  ``(nx, ny, nz)`` (neuron ``i`` sits at ``np.unravel_index(i, grid)``); a random
  fraction ``frac_inhibitory`` (Maass: 20 %) is inhibitory;
* recurrent synapses drawn independently with probability
  ``C[type(a), type(b)] * exp(-(D(a, b) / lambda)^2)``, ``D`` the Euclidean grid distance
  and ``C`` = 0.3 (E->E), 0.2 (E->I), 0.4 (I->E), 0.1 (I->I), Maass's values, with
  ``lambda = 2``; no self-connections; one :class:`nmcompiler.ir.Sparse` projection with weight
  ``+w_exc`` from an excitatory and ``-w_inh`` from an inhibitory neuron (binary in
  magnitude, signed by the presynaptic type: Dale's law) and delay >= 1;
* an input ``"input"`` of ``n_inputs`` analog channels, each reaching a random fraction
  ``input_density`` of the neurons through an :class:`nmcompiler.ir.Sparse` projection;
* a spike probe on the reservoir. :meth:`LSM.run` simulates with :func:`nmcompiler.ir.simulate`
  and low-pass filters the spikes (``x[t] = exp(-1/state_tau) x[t-1] + s[t]``, Maass's
  exponential filter of the spike trains) into the states the readout sees.

The pairs are drawn per grid offset (all neurons at once, one vectorised Bernoulli draw
per offset within the radius where the probability falls below ``p_min``), never as an
``N x N`` matrix, so building 10^5+ neurons takes seconds and memory in proportion to the
synapses.

Departures from Maass et al.: discrete time with one step per millisecond-like unit;
weights are binary per presynaptic type (docs/lsm.md) instead of Gamma-distributed; one
synaptic and one membrane time constant for the whole population (the IR's current decay
belongs to the postsynaptic neuron); uniform delay instead of 1.5 / 0.8 ms; the
connection-probability tail below ``p_min`` is cut; the background current is a fixed
per-neuron bias drawn uniformly, without noise.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from nmcompiler import ir
from nmcompiler.ir.errors import InputError, UsageError

__all__ = [
    "MAASS_C",
    "EXAMPLE_PARAMS",
    "EXAMPLE_ALPHA",
    "LSM",
    "build_lsm",
    "connection_pairs",
    "filter_spikes",
    "Readout",
    "one_hot",
    "RecallTask",
    "recall_task",
]

#: Maass et al. (2002) connection scale C[pre type][post type], index 0 = E, 1 = I.
MAASS_C = np.array([[0.3, 0.2], [0.4, 0.1]])

RESERVOIR = "reservoir"
INPUT = "input"

#: Parameters of the example of docs/lsm.md (bench/frontends_scores.py).
EXAMPLE_PARAMS: dict[str, Any] = {
    "w_exc": 0.05,
    "w_inh": 0.1,
    "input_density": 0.3,
    "input_weight": 0.1,
    "tau_mem": 20.0,
    "tau_syn": 3.0,
    "bias": (0.0, 0.5),
    "state_tau": 10.0,
}

#: Ridge penalty of the example's readout (chosen on a validation split, docs/lsm.md).
EXAMPLE_ALPHA = 100.0


def _int(value: object, what: str, least: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
        raise UsageError(
            f"lsm: {what}={value!r}, expected an integer >= {least}",
            obj=what,
            rule=f"{what} >= {least}",
            need=f">= {least}",
            limit=value,
            hint=f"pass {what}={max(least, 1)} or more",
        )
    return int(value)


def _real(value: object, what: str, lo: float, hi: float = np.inf, *, open_lo: bool = False
          ) -> float:
    ok = isinstance(value, numbers.Real) and np.isfinite(value) and value <= hi
    ok = ok and (value > lo if open_lo else value >= lo)
    if not ok:
        rng = f"{'(' if open_lo else '['}{lo}, {hi}]"
        raise UsageError(
            f"lsm: {what}={value!r} is out of range {rng}",
            obj=what,
            rule=f"{what} in {rng}",
            limit=value,
            hint=f"pass a finite {what} in {rng}",
        )
    return float(value)


# ---------------------------------------------------------------------------- builder
def connection_pairs(
    grid: tuple[int, int, int],
    excitatory: np.ndarray,
    *,
    lam: float = 2.0,
    c: np.ndarray = MAASS_C,
    p_min: float = 1e-3,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw recurrent pairs with ``P = c[type(pre), type(post)] exp(-(D / lam)^2)``.

    Vectorised per grid offset: for each offset ``o`` with ``0 < |o| <= r_max`` (where
    ``max(c) exp(-(r_max / lam)^2) = p_min``) every neuron ``a`` with ``a + o`` inside the
    grid gets one Bernoulli draw. Work and memory are ``O(N r_max^3)`` draws processed one
    offset at a time, output ``O(synapses)``.

    Returns:
        ``(pre, post)`` int64 arrays of flat neuron indices (C order over ``grid``).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    nx, ny, nz = grid
    n = nx * ny * nz
    etype = np.where(np.asarray(excitatory, dtype=bool), 0, 1).astype(np.int8)
    cmax = float(np.max(c))
    if cmax <= p_min or lam <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r_max = lam * np.sqrt(np.log(cmax / p_min))
    r = int(np.floor(r_max))
    ax = np.arange(-r, r + 1)
    off = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    d2 = (off**2).sum(1)
    # offsets reaching past the grid on some axis connect nobody (and would make the
    # slices below wrap around)
    inside = np.all(np.abs(off) < np.asarray(grid), axis=1)
    keep = (d2 > 0) & (d2 <= r_max**2) & inside
    off, d2 = off[keep], d2[keep]
    idx = np.arange(n, dtype=np.int64).reshape(grid)
    pres, posts = [], []
    for (dx, dy, dz), dd in zip(off.tolist(), d2.tolist(), strict=True):
        src = idx[max(0, -dx):nx - max(0, dx), max(0, -dy):ny - max(0, dy),
                  max(0, -dz):nz - max(0, dz)]
        if src.size == 0:
            continue
        dst = idx[max(0, dx):nx - max(0, -dx), max(0, dy):ny - max(0, -dy),
                  max(0, dz):nz - max(0, -dz)]
        src, dst = src.ravel(), dst.ravel()
        p = c[etype[src], etype[dst]] * np.exp(-dd / lam**2)
        hit = rng.random(src.size) < p
        pres.append(src[hit])
        posts.append(dst[hit])
    if not pres:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pres), np.concatenate(posts)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LSM:
    """A built liquid state machine.

    Attributes:
        network: the :class:`nmcompiler.ir.Network` (input ``"input"``, population ``"reservoir"``
            with a spike probe).
        grid: ``(nx, ny, nz)``; neuron ``i`` sits at ``np.unravel_index(i, grid)``.
        excitatory: ``(N,)`` bool, True for excitatory neurons.
        state_tau: time constant (steps) of the exponential filter giving the states.
    """

    network: ir.Network
    grid: tuple[int, int, int]
    excitatory: np.ndarray
    state_tau: float

    @property
    def n_neurons(self) -> int:
        """Neurons in the reservoir."""
        return int(np.prod(self.grid))

    @property
    def positions(self) -> np.ndarray:
        """``(N, 3)`` integer grid coordinates of the neurons."""
        return np.stack(np.unravel_index(np.arange(self.n_neurons), self.grid), axis=1)

    def run(self, inputs: np.ndarray, *, return_spikes: bool = False) -> Any:
        """Run the reservoir on ``(T, n_inputs)`` or ``(T, B, n_inputs)`` input currents.

        Simulates once with :func:`nmcompiler.ir.simulate` and returns the filtered spike traces,
        ``(T, N)`` or ``(T, B, N)`` (and the spikes too if ``return_spikes``). Keep them:
        :class:`Readout` trains and re-trains on them without running the reservoir again.
        """
        res = ir.simulate(self.network, {INPUT: inputs})
        spikes = res.get(f"{RESERVOIR}.spikes")
        states = filter_spikes(spikes, self.state_tau)
        return (states, spikes) if return_spikes else states


def filter_spikes(spikes: np.ndarray, tau: float) -> np.ndarray:
    """Exponential filter along time (axis 0): ``x[t] = exp(-1/tau) x[t-1] + s[t]``."""
    from scipy.signal import lfilter

    tau = _real(tau, "state_tau", 0.0, open_lo=True)
    a = np.exp(-1.0 / tau)
    return lfilter([1.0], [1.0, -a], np.asarray(spikes, dtype=np.float64), axis=0)


def build_lsm(
    grid: tuple[int, int, int] = (15, 3, 3),
    n_inputs: int = 1,
    *,
    frac_inhibitory: float = 0.2,
    lam: float = 2.0,
    c: np.ndarray = MAASS_C,
    p_min: float = 1e-3,
    w_exc: float = 0.05,
    w_inh: float = 0.1,
    input_density: float = 0.3,
    input_weight: float = 0.1,
    tau_mem: float | tuple[float, float] = 20.0,
    tau_syn: float = 3.0,
    theta: float = 1.0,
    bias: tuple[float, float] = (0.0, 0.5),
    refractory: int = 2,
    delay: int = 1,
    input_delay: int = 1,
    state_tau: float = 10.0,
    seed: int = 0,
    name: str = "lsm",
) -> LSM:
    """Build a liquid state machine (Maass et al. 2002; see the module docstring).

    Args:
        grid: ``(nx, ny, nz)`` neurons along each axis (Maass: 15 x 3 x 3).
        n_inputs: analog input channels.
        frac_inhibitory: fraction of inhibitory neurons, drawn at random (Maass: 0.2).
        lam: length scale ``lambda`` of the connection probability, in grid units.
        c: ``(2, 2)`` scale ``C[pre, post]`` (0 = E, 1 = I); default Maass's values.
        p_min: connection probabilities below this are cut (bounds the neighbourhood).
        w_exc: magnitude of the excitatory recurrent weight.
        w_inh: magnitude of the inhibitory recurrent weight.
        input_density: probability that an input channel reaches a given neuron.
        input_weight: input weights are drawn uniformly from ``[0, input_weight]``.
        tau_mem: membrane time constant in steps (``lam = exp(-1/tau_mem)``), or a range
            ``(lo, hi)`` from which each neuron draws its own, log-uniformly (a bank of
            time scales lengthens the memory).
        tau_syn: synaptic time constant in steps (``alpha_u = exp(-1/tau_syn)``; 0 = none).
        theta: firing threshold (hard reset to 0).
        bias: background input as a fraction of the rheobase ``theta (1 - lam)``, drawn
            uniformly per neuron from this range (Maass: 0.9-0.97, just below threshold;
            lower here, so that the input rather than the background drives the spikes).
        refractory: refractory period in steps.
        delay: recurrent delay in steps (>= 1: the reservoir is a loop).
        input_delay: delay of the input projection (>= 0).
        state_tau: time constant of the state filter of :meth:`LSM.run`.
        seed: seed of every random choice; same seed, same network.
        name: network name.
    """
    if not (isinstance(grid, (tuple, list)) and len(grid) == 3):
        raise UsageError(
            f"lsm: grid={grid!r}, expected three sizes (nx, ny, nz)",
            obj="grid",
            rule="3-D grid",
            hint="e.g. grid=(15, 3, 3), Maass et al.'s column",
        )
    grid = tuple(_int(g, "grid size", 1) for g in grid)  # type: ignore[assignment]
    n_inputs = _int(n_inputs, "n_inputs", 1)
    frac_inhibitory = _real(frac_inhibitory, "frac_inhibitory", 0.0, 1.0)
    lam = _real(lam, "lam", 0.0, open_lo=True)
    p_min = _real(p_min, "p_min", 0.0, 1.0, open_lo=True)
    for val, what in ((w_exc, "w_exc"), (w_inh, "w_inh"), (input_weight, "input_weight")):
        _real(val, what, 0.0)
    input_density = _real(input_density, "input_density", 0.0, 1.0)
    if isinstance(tau_mem, (tuple, list)):
        t_lo, t_hi = (_real(t, "tau_mem", 0.0, open_lo=True) for t in tau_mem)
        if t_lo > t_hi:
            raise UsageError(
                f"lsm: tau_mem range {tau_mem!r} is not low <= high",
                obj="tau_mem",
                rule="ordered range",
                hint="e.g. tau_mem=(5.0, 50.0)",
            )
    else:
        t_lo = t_hi = _real(tau_mem, "tau_mem", 0.0, open_lo=True)
    tau_syn = _real(tau_syn, "tau_syn", 0.0)
    theta = _real(theta, "theta", 0.0, open_lo=True)
    refractory = _int(refractory, "refractory", 0)
    delay = _int(delay, "delay", 1)
    input_delay = _int(input_delay, "input_delay", 0)
    state_tau = _real(state_tau, "state_tau", 0.0, open_lo=True)
    c = np.asarray(c, dtype=np.float64)
    if c.shape != (2, 2) or np.any(c < 0) or np.any(c > 1):
        raise UsageError(
            f"lsm: c has shape {c.shape} or values outside [0, 1]",
            obj="c",
            rule="(2, 2) probabilities",
            hint="c[pre][post] with 0 = excitatory, 1 = inhibitory, e.g. lsm.MAASS_C",
        )
    b_lo, b_hi = (float(b) for b in bias)
    if not 0 <= b_lo <= b_hi:
        raise UsageError(
            f"lsm: bias range {bias!r} is not 0 <= low <= high",
            obj="bias",
            rule="ordered range",
            hint="e.g. bias=(0.0, 0.5): fractions of the rheobase",
        )

    rng = np.random.default_rng(seed)
    n = int(np.prod(grid))
    excitatory = rng.random(n) >= frac_inhibitory
    pre, post = connection_pairs(grid, excitatory, lam=lam, c=c, p_min=p_min, seed=rng)
    weight = np.where(excitatory[pre], w_exc, -w_inh)

    # input: each (channel, neuron) pair with probability input_density
    n_hit = rng.binomial(n, input_density, size=n_inputs)
    in_pre = np.repeat(np.arange(n_inputs, dtype=np.int64), n_hit)
    in_post = np.concatenate(
        [rng.choice(n, size=k, replace=False) for k in n_hit]
    ).astype(np.int64) if n_inputs else np.zeros(0, np.int64)
    in_w = rng.uniform(0.0, input_weight, size=in_pre.size)

    if t_lo == t_hi:
        decay: float | np.ndarray = float(np.exp(-1.0 / t_lo))
    else:
        decay = np.exp(-1.0 / np.exp(rng.uniform(np.log(t_lo), np.log(t_hi), size=n)))
    alpha_u = float(np.exp(-1.0 / tau_syn)) if tau_syn > 0 else 0.0
    bias_arr = rng.uniform(b_lo, b_hi, size=n) * theta * (1.0 - decay)
    model = ir.LIF(alpha_u=alpha_u, lam=decay, theta=theta, bias=bias_arr, v_reset=0.0,
                   reset=ir.Reset.HARD, refractory=refractory)

    net = ir.Network(name=name)
    net.input(INPUT, n_inputs)
    net.population(RESERVOIR, model=model, shape=grid)
    net.connect(INPUT, RESERVOIR, ir.Sparse.from_coo(
        pre=in_pre, post=in_post, weight=in_w, n_pre=n_inputs, n_post=n), delay=input_delay)
    net.connect(RESERVOIR, RESERVOIR, ir.Sparse.from_coo(
        pre=pre, post=post, weight=weight, n_pre=n, n_post=n), delay=delay)
    net.probe(RESERVOIR, "spikes")
    net.metadata["frontend"] = "lsm"
    net.metadata["lsm"] = {
        "paper": "Maass, Natschlaeger, Markram 2002",
        "grid": list(grid),
        "lambda": lam,
        "c": c.tolist(),
        "p_min": p_min,
        "n_excitatory": int(excitatory.sum()),
        "n_synapses": int(pre.size),
        "seed": int(seed),
        "state_tau": state_tau,
    }
    return LSM(network=net, grid=grid, excitatory=excitatory,  # type: ignore[arg-type]
               state_tau=state_tau)


# ---------------------------------------------------------------------------- readout
def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n,)`` integer labels to ``(n, n_classes)`` float one-hot rows."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0
                                                          or labels.max() >= n_classes)):
        raise InputError(
            f"one_hot: labels must be integers in 0..{n_classes - 1}",
            obj="labels",
            rule="label range",
            hint="drop undefined labels (e.g. -1) before encoding",
        )
    return np.eye(n_classes)[labels]


class Readout:
    """Linear readout trained by ridge regression in closed form (numpy).

    ``fit(states, targets, alpha)`` centres the states, eigendecomposes their Gram matrix
    once -- ``X^T X`` (``d x d``) when there are more samples than features, else the
    kernel ``X X^T`` (dual form) -- and solves ``W = (X^T X + alpha I)^-1 X^T Y``; the
    intercept is not penalised. The states and the eigendecomposition are cached, so
    :meth:`refit` trains on new targets (or a new ``alpha``) in ``O(n d k)`` without the
    reservoir and without another decomposition (docs/lsm.md: "re-trained any time with new
    true outputs and the recorded states, without the need to re-run inference").

    Attributes after fitting: ``weight`` ``(d, k)``, ``intercept`` ``(k,)``, ``alpha``.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = _real(alpha, "alpha", 0.0)
        self.weight: np.ndarray | None = None
        self.intercept: np.ndarray | None = None
        self._xc: np.ndarray | None = None
        self._mean: np.ndarray | None = None
        self._eig: tuple[np.ndarray, np.ndarray] | None = None
        self._dual = False
        self._squeeze = False
        self.classes: np.ndarray | None = None  #: class labels after :meth:`fit_classes`
        self.n_decompositions = 0  #: eigendecompositions done (1 per fit, 0 per refit)

    @staticmethod
    def _flatten(states: np.ndarray) -> np.ndarray:
        x = np.asarray(states, dtype=np.float64)
        if x.ndim < 2:
            raise InputError(
                f"readout: states of shape {x.shape}, expected (n_samples, n_features)",
                obj="states",
                rule="2-D states",
                hint="pass states[sample_times] from LSM.run, (T, N) or (T, B, N)",
            )
        return x.reshape(-1, x.shape[-1])

    @staticmethod
    def _targets(targets: np.ndarray, n: int) -> np.ndarray:
        y = np.asarray(targets, dtype=np.float64)
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y.reshape(-1, y.shape[-1]) if y.ndim else y
        if y2.ndim != 2 or y2.shape[0] != n:
            raise InputError(
                f"readout: targets of shape {y.shape} do not match {n} state samples",
                obj="targets",
                rule="one target row per state",
                need=n,
                limit=y.shape,
                hint="index the states and the targets with the same sample times; "
                "targets are (n,) or (n, k)",
            )
        if not np.all(np.isfinite(y2)):
            raise InputError(
                "readout: targets contain NaN or infinite values",
                obj="targets",
                rule="finite values",
                hint="drop undefined samples",
            )
        return y2

    def fit(self, states: np.ndarray, targets: np.ndarray, alpha: float | None = None
            ) -> Readout:
        """Fit on ``(n, d)`` states (or ``(T, B, d)``) and ``(n,)`` / ``(n, k)`` targets."""
        x = self._flatten(states)
        if not np.all(np.isfinite(x)):
            raise InputError(
                "readout: states contain NaN or infinite values",
                obj="states",
                rule="finite values",
                hint="check the reservoir run",
            )
        self._mean = x.mean(axis=0)
        self._xc = x - self._mean
        n, d = self._xc.shape
        self._dual = d > n
        gram = self._xc @ self._xc.T if self._dual else self._xc.T @ self._xc
        evals, evecs = np.linalg.eigh(gram)
        self._eig = (np.maximum(evals, 0.0), evecs)
        self.n_decompositions += 1
        return self.refit(targets, alpha)

    def fit_classes(self, states: np.ndarray, labels: np.ndarray, alpha: float | None = None
                    ) -> Readout:
        """Fit a classifier on ``(n,)`` class labels (one-hot rows inside, one per class
        present); :meth:`classify` then returns those labels."""
        classes, y = self._encode(labels)
        self.fit(states, y, alpha)
        self.classes = classes
        return self

    def refit_classes(self, labels: np.ndarray, alpha: float | None = None) -> Readout:
        """:meth:`fit_classes` on new labels for the cached states."""
        classes, y = self._encode(labels)
        self.refit(y, alpha)
        self.classes = classes
        return self

    @staticmethod
    def _encode(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lab = np.asarray(labels)
        if lab.ndim != 1 or lab.dtype.kind not in "iub":
            raise InputError(
                f"readout: class labels must be a 1-D integer array, got {lab.dtype} of "
                f"shape {lab.shape}",
                obj="labels", rule="class labels",
                hint="pass (n,) ints; for real-valued targets use fit(states, targets)",
            )
        classes, idx = np.unique(lab, return_inverse=True)
        if classes.size < 2:
            raise InputError(
                f"readout: class labels have {classes.size} distinct value(s)",
                obj="labels", rule="two classes or more", need=2, limit=int(classes.size),
                hint="train on samples of at least two classes",
            )
        return classes, np.eye(classes.size)[idx]

    def refit(self, targets: np.ndarray, alpha: float | None = None) -> Readout:
        """Train on new targets for the cached states (no reservoir run, no decomposition)."""
        self.classes = None
        if self._xc is None or self._eig is None:
            raise UsageError(
                "readout: refit before fit",
                obj="Readout",
                rule="fit first",
                hint="call fit(states, targets) once; refit(targets) reuses its states",
            )
        if alpha is not None:
            self.alpha = _real(alpha, "alpha", 0.0)
        n = self._xc.shape[0]
        y = self._targets(targets, n)
        self._squeeze = np.ndim(targets) == 1
        y_mean = y.mean(axis=0)
        yc = y - y_mean
        evals, v = self._eig
        denom = evals + self.alpha
        inv = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 1e-12 * max(
            float(evals.max(initial=0.0)), 1e-300))
        if self._dual:  # W = X^T U diag(1/(e+a)) U^T Y
            self.weight = self._xc.T @ (v @ (inv[:, None] * (v.T @ yc)))
        else:  # W = V diag(1/(e+a)) V^T X^T Y
            self.weight = v @ (inv[:, None] * (v.T @ (self._xc.T @ yc)))
        self.intercept = y_mean - self._mean @ self.weight
        return self

    def predict(self, states: np.ndarray) -> np.ndarray:
        """``(n, k)`` predictions (``(n,)`` if fitted on 1-D targets)."""
        if self.weight is None:
            raise UsageError(
                "readout: predict before fit",
                obj="Readout",
                rule="fit first",
                hint="call fit(states, targets)",
            )
        x = self._flatten(states)
        if x.shape[1] != self.weight.shape[0]:
            raise InputError(
                f"readout: states have {x.shape[1]} features, the readout was fitted on "
                f"{self.weight.shape[0]}",
                obj="states",
                rule="feature count",
                need=self.weight.shape[0],
                limit=x.shape[1],
                hint="use states of the same reservoir",
            )
        out = x @ self.weight + self.intercept
        return out[:, 0] if self._squeeze else out

    def classify(self, states: np.ndarray) -> np.ndarray:
        """Class of each sample: the label of :meth:`fit_classes`, or the argmax column
        after a fit on ``(n, k)`` one-hot targets (:func:`one_hot`).

        Raises:
            UsageError: the readout was fitted on 1-D targets (a regression: its argmax
                is always 0).
        """
        pred = self.predict(states)
        if self._squeeze or self.weight is None or self.weight.shape[1] < 2:
            raise UsageError(
                "readout: classify needs one output per class, but the readout was fitted "
                "on 1-D targets (a regression, whose argmax is always class 0)",
                obj="Readout", rule="class targets",
                hint="fit_classes(states, labels), or fit(states, one_hot(labels, k))",
            )
        idx = np.argmax(pred.reshape(-1, self.weight.shape[1]), axis=1)
        return self.classes[idx] if self.classes is not None else idx

    def r2(self, states: np.ndarray, targets: np.ndarray) -> float:
        """Coefficient of determination, averaged over output dimensions."""
        pred = self.predict(states).reshape(len(np.asarray(targets)), -1)
        y = np.asarray(targets, dtype=np.float64).reshape(pred.shape)
        ss_res = ((y - pred) ** 2).sum(axis=0)
        ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1.0 - ss_res / np.maximum(ss_tot, 1e-300)))


# ---------------------------------------------------------------------------- task
@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RecallTask:
    """Delayed recall of a random symbol stream (generated in code).

    Symbol ``j`` (one of ``n_symbols``) is presented for ``hold`` steps as a one-hot input
    current of height ``amplitude``. At the last step of segment ``j`` the target for
    delay ``k`` is the symbol of segment ``j - k``: ``k = 0`` needs no memory, ``k >= 1``
    cannot be read from the current input (chance ``1 / n_symbols``).

    Attributes:
        symbols: ``(n_segments,)`` ints.
        inputs: ``(T, n_symbols)`` input currents, ``T = n_segments * hold``.
        sample_times: ``(n_segments,)`` the last step of each segment.
        n_symbols, hold: as above.
        washout: segments skipped at the start (the reservoir's transient).
        n_train: segments ``washout .. n_train - 1`` train, the rest test.
    """

    symbols: np.ndarray
    inputs: np.ndarray
    sample_times: np.ndarray
    n_symbols: int
    hold: int
    washout: int
    n_train: int

    def labels(self, delay: int) -> np.ndarray:
        """Target symbol per segment for recall ``delay`` segments back (-1: undefined)."""
        delay = _int(delay, "delay", 0)
        out = np.full(self.symbols.shape, -1, dtype=np.int64)
        out[delay:] = self.symbols[: self.symbols.size - delay]
        return out

    @property
    def train(self) -> np.ndarray:
        """Segment indices of the training set."""
        return np.arange(self.washout, self.n_train)

    @property
    def test(self) -> np.ndarray:
        """Segment indices of the test set."""
        return np.arange(self.n_train, self.symbols.size)


def recall_task(
    n_segments: int = 700,
    *,
    n_symbols: int = 4,
    hold: int = 5,
    amplitude: float = 1.0,
    washout: int = 20,
    train_fraction: float = 0.7,
    seed: int = 0,
) -> RecallTask:
    """A seeded :class:`RecallTask`."""
    n_segments = _int(n_segments, "n_segments", 2)
    n_symbols = _int(n_symbols, "n_symbols", 2)
    hold = _int(hold, "hold", 1)
    washout = _int(washout, "washout", 0)
    train_fraction = _real(train_fraction, "train_fraction", 0.0, 1.0, open_lo=True)
    n_train = int(round(n_segments * train_fraction))
    if not washout < n_train < n_segments:
        raise UsageError(
            f"lsm: washout {washout} and {n_train} training segments of {n_segments} leave "
            "no training or no test data",
            obj="recall_task",
            rule="washout < n_train < n_segments",
            hint="use more segments, a smaller washout or another train_fraction",
        )
    rng = np.random.default_rng(seed)
    symbols = rng.integers(0, n_symbols, size=n_segments)
    inputs = np.repeat(np.eye(n_symbols)[symbols] * float(amplitude), hold, axis=0)
    sample_times = np.arange(n_segments) * hold + hold - 1
    return RecallTask(symbols=symbols, inputs=inputs, sample_times=sample_times,
                      n_symbols=n_symbols, hold=hold, washout=washout, n_train=n_train)
