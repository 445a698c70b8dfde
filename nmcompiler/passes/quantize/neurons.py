"""Neuron parameters: decays, integer entries and the model checks of a family."""

from __future__ import annotations

from typing import Any

import numpy as np

from nmcompiler.ir.errors import FitError
from nmcompiler.ir.models import model_fields
from nmcompiler.ir.network import Population

from ...targets import Target
from .formats import Fmt


# =========================================================================== neurons
def as_array(x: Any, n: int) -> np.ndarray:
    """``x`` broadcast to ``n`` values."""
    return np.broadcast_to(np.asarray(x), (n,))


def quantize_decays(pop: Population, fmt: Fmt, tname: str, caps: Any) -> tuple[dict, dict, dict]:
    """(new model fields, integer parameters, errors) for the decays of ``pop``."""
    model = pop.model
    own = model_fields(model)
    new: dict[str, Any] = {}
    ints: dict[str, Any] = {}
    err: dict[str, float] = {}
    where = f"population '{pop.name}'"
    d = fmt.decay_bits
    for name in ("alpha_u", "lam"):
        val = np.asarray(getattr(model, name))
        if val.dtype.kind == "c":
            if not caps.resonate_and_fire:
                raise FitError(
                    f"{where} is resonate-and-fire; {tname} has no resonate-and-fire "
                    "neurons", obj=pop.name, rule="neuron model", need="RF", limit="LIF/IF",
                    hint="use LIF neurons or a target with resonate-and-fire (emulator)")
            if fmt.rules.no_resonate_and_fire:
                raise FitError(
                    f"{where} is resonate-and-fire; {tname} lists resonate-and-fire, but "
                    f"{fmt.rules.no_resonate_and_fire}", obj=pop.name, rule="neuron model",
                    need="RF", limit="LIF/IF",
                    hint="use LIF neurons, or compile for the emulator target")
            bits = d if d else 12
            re = np.trunc(val.real * 2**bits)
            im = np.trunc(val.imag * 2**bits)
            q = (re + 1j * im) / 2**bits
            ints[f"{name}_re"] = as_ints(re)
            ints[f"{name}_im"] = as_ints(im)
            ints["decay_bits"] = bits
        elif (own_code := fmt.rules.decay(name, val)) is not None:
            q, entries = own_code
            ints.update({key: as_ints(v) for key, v in entries.items()})
        else:
            fixed = 0.0 if name == "alpha_u" else 1.0
            if d == 0 or (name == "alpha_u" and not fmt.current):
                if np.any(val != fixed):
                    what = "synaptic current stage" if name == "alpha_u" else "leak"
                    i = int(np.argmax(np.abs(val - fixed)))
                    worst = complex(val.reshape(-1)[i])
                    worst = worst.real if worst.imag == 0 else worst
                    raise FitError(
                        f"{where} has {name} = {worst!r} ({abs(worst - fixed)!r} away from "
                        f"{fixed:g}: a {what}); {tname} has none",
                        obj=pop.name, rule=f"no {what}", need=f"{name} != {fixed:g}",
                        limit=f"{name} = {fixed:g}",
                        hint="use IF neurons (lam=1, alpha_u=0) for this target")
                q = val.astype(np.float64)
            else:
                q = np.rint(val * 2**d) / 2**d
                ints[f"{name}_mant"] = as_ints(np.rint(val * 2**d))
                ints["decay_bits"] = d
        err[name] = float(np.max(np.abs(q - val))) if val.size else 0.0
        if name in own:
            new[name] = q if np.ndim(own[name]) else (complex(q) if q.dtype.kind == "c"
                                                       else float(q))
    return new, ints, err


def as_ints(x: Any) -> Any:
    """``x`` as one int if all values agree, else as a list of ints."""
    a = np.asarray(x)
    if a.size == 0:
        return []
    flat = a.reshape(-1)
    if np.all(flat == flat[0]):
        return int(flat[0].real) if a.dtype.kind == "c" else int(flat[0])
    return [int(v) for v in flat]


def check_model(pop: Population, fmt: Fmt, target: Target) -> None:
    """Raise a FitError if the neuron model of ``pop`` needs a feature ``target`` lacks."""
    m = pop.model
    caps = target.capabilities
    where = f"population '{pop.name}'"
    tname = target.name
    if not m.spiking:
        return
    if m.reset.value not in caps.reset_modes:
        raise FitError(
            f"{where} uses reset '{m.reset.value}'; {tname} supports "
            f"{', '.join(caps.reset_modes)}", obj=pop.name, rule="reset mode",
            need=m.reset.value, limit=list(caps.reset_modes),
            hint="change the reset mode (ANN conversion: hard reset with threshold "
            "balancing) or pick a target that has it")
    if m.graded:
        if not caps.graded_spikes:
            raise FitError(
                f"{where} sends graded spikes; {tname} has binary spikes only",
                obj=pop.name, rule="graded spikes", need="graded", limit="binary",
                hint="use binary spikes (graded=False) or a target with graded spikes")
    if m.refractory and fmt.rules.no_refractory:
        raise FitError(
            f"{where} has a refractory period of {m.refractory} step(s); {tname} has no "
            f"refractory period: {fmt.rules.no_refractory}", obj=pop.name,
            rule="refractory period", need=int(m.refractory), limit=0,
            hint="set refractory=0 or pick a target with refractory periods")
    if m.noise and not caps.stochastic:
        raise FitError(
            f"{where} has stochastic firing (noise {m.noise}); {tname} has none",
            obj=pop.name, rule="stochastic firing", need=m.noise, limit=0,
            hint="set noise=0 or pick a target with stochastic neurons")
    if fmt.rules.resets_to_zero_only and np.any(np.asarray(m.v_reset) != 0):
        raise FitError(
            f"{where} resets to v_reset = {np.max(np.abs(m.v_reset))}; {tname} resets to 0 "
            "only", obj=pop.name, rule="reset to 0", need="v_reset != 0", limit=0,
            hint="shift the voltage: v_reset = 0 with theta and bias moved by -v_reset")
