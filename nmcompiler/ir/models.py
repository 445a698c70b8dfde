"""Neuron models of the IR (docs/architecture.md#ir-semantics).

Every model is a small frozen dataclass of per-step parameters. A parameter is a scalar
(shared by the population) or a 1-D array with one value per neuron. All models share one
update, executed by :mod:`nmcompiler.ir.simulate`; the classes differ in which parameters
they expose and which are fixed::

    a[t]  = sum_p W_p . s_pre[t - d_p]
    u[t]  = alpha_u * u[t-1] + a[t]            # alpha_u = 0: no current stage (u = a)
    v*[t] = lam * v[t-1] + u[t] + bias        # lam complex for resonate-and-fire
    s[t]  = spike(v*[t])                      # Heaviside on Re(v*) - theta, or graded
    v[t]  = reset(v*[t], s[t])                # hard: v_reset; soft: v* - theta*s; none

Conventions chosen where the semantics leave a choice (docs/ir.md repeats them):

* The spike test is strict, ``Re(v*) > theta`` (Lava, Norse, snnTorch); set
  ``fire_at_threshold=True`` for ``>=`` (sinabs, Speck).
* Graded spikes carry the integer payload ``n = floor(Re(v*) / theta)`` clipped to
  ``[0, graded_max]`` (sinabs' MultiSpike staircase); a neuron below its
  threshold sends nothing. Soft reset subtracts ``theta * n``.
* Stochastic firing adds seeded Gaussian noise of standard deviation ``noise`` to the
  threshold comparison: P(spike) = Phi((Re(v*) - theta) / noise) (a smoothed
  Heaviside). The generator is numpy PCG64 seeded with ``(seed, population index)``.
* Refractory period ``r``: for ``r`` steps after a spike the voltage is held at its reset
  value and the neuron cannot fire; the current stage keeps integrating (Lava's
  LIFRefractory).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Union

import numpy as np

__all__ = ["Reset", "LIF", "IF", "LI", "RF", "NeuronModel", "Param", "MODEL_TYPES"]

Param = Union[float, complex, np.ndarray]


class Reset(enum.Enum):
    """What happens to the voltage after a spike."""

    HARD = "hard"  #: v = v_reset
    SOFT = "soft"  #: v = v* - theta * s (subtract the threshold)
    NONE = "none"  #: v = v*


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LIF:
    """Current-based leaky integrate-and-fire neuron (Loihi's neuron).

    Attributes:
        alpha_u: per-step decay factor of the synaptic current, in [0, 1]; 0 = no
            current stage (u = a). Loihi: ``1 - du/4096``.
        lam: per-step decay factor of the voltage, in [0, 1]. Loihi: ``1 - dv/4096``.
        theta: firing threshold (> 0), in voltage units.
        bias: constant input added to the voltage each step.
        v_reset: voltage after a hard reset.
        reset: reset mode.
        refractory: steps (>= 0) the neuron stays silent after a spike.
        graded: send integer payloads instead of binary spikes.
        graded_max: largest payload of a graded spike (>= 1).
        fire_at_threshold: spike on ``v* >= theta`` instead of ``v* > theta``.
        noise: standard deviation of the threshold noise (0 = deterministic).
        seed: seed of the threshold noise.
    """

    alpha_u: Param = 0.0
    lam: Param = 1.0
    theta: Param = 1.0
    bias: Param = 0.0
    v_reset: Param = 0.0
    reset: Reset = Reset.HARD
    refractory: int = 0
    graded: bool = False
    graded_max: int = 1
    fire_at_threshold: bool = False
    noise: float = 0.0
    seed: int = 0

    spiking = True


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class IF:
    """Integrate-and-fire: no leak (lam = 1), no current stage (alpha_u = 0)."""

    theta: Param = 1.0
    bias: Param = 0.0
    v_reset: Param = 0.0
    reset: Reset = Reset.HARD
    refractory: int = 0
    graded: bool = False
    graded_max: int = 1
    fire_at_threshold: bool = False
    noise: float = 0.0
    seed: int = 0

    alpha_u = 0.0
    lam = 1.0
    spiking = True


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LI:
    """Leaky integrator: a non-spiking readout (its voltage is the output)."""

    alpha_u: Param = 0.0
    lam: Param = 1.0
    bias: Param = 0.0

    theta = np.inf
    v_reset = 0.0
    reset = Reset.NONE
    refractory = 0
    graded = False
    graded_max = 1
    fire_at_threshold = False
    noise = 0.0
    seed = 0
    spiking = False


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RF:
    """Resonate-and-fire neuron (Izhikevich 2001; Loihi 2's RF): complex voltage.

    ``lam = exp(-1/tau + 1j*omega)``: |lam| is the per-step decay, ``angle(lam)`` the
    phase advance per step (radians), so the neuron resonates at ``omega / (2 pi)``
    cycles per step. It fires when the real part crosses ``theta``. Use
    :meth:`from_frequency` to build it from a decay time and a frequency.
    """

    lam: Param = complex(0.9, 0.3)
    alpha_u: Param = 0.0
    theta: Param = 1.0
    bias: Param = 0.0
    v_reset: Param = 0.0
    reset: Reset = Reset.HARD
    refractory: int = 0
    graded: bool = False
    graded_max: int = 1
    fire_at_threshold: bool = False
    noise: float = 0.0
    seed: int = 0

    spiking = True

    @staticmethod
    def from_frequency(*, tau: float, cycles_per_step: float, **kwargs: object) -> RF:
        """RF neuron decaying with time constant ``tau`` steps, resonating at the frequency."""
        lam = np.exp(-1.0 / tau + 2j * np.pi * cycles_per_step)
        return RF(lam=complex(lam), **kwargs)  # type: ignore[arg-type]


NeuronModel = Union[LIF, IF, LI, RF]

#: The model classes, for save/load and verification (a closed set, not a registry).
MODEL_TYPES: tuple[type, ...] = (LIF, IF, LI, RF)

#: Parameters that may be per-neuron arrays; the rest are scalars.
ARRAY_PARAMS = ("alpha_u", "lam", "theta", "bias", "v_reset")


def model_fields(model: NeuronModel) -> dict[str, object]:
    """The model's own (settable) parameters as a dict, in declaration order."""
    return {f.name: getattr(model, f.name) for f in fields(model)}


def canonical(model: NeuronModel) -> dict[str, object]:
    """Every parameter of the general update, fixed ones included."""
    names = ARRAY_PARAMS + (
        "reset",
        "refractory",
        "graded",
        "graded_max",
        "fire_at_threshold",
        "noise",
        "seed",
        "spiking",
    )
    return {n: getattr(model, n) for n in names}

