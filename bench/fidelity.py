"""Fidelity of compiled networks: output agreement of the compiled network (run on the
emulator, in the target's integer arithmetic) with the float reference (``ir.simulate``
of the imported network), over 200 steps of seeded random input, on the framework corpus
(snnTorch, Norse, sinabs, Rockpool networks exported by the frameworks themselves:
nmcompiler/testing/corpus.py), for loihi, loihi2, spinnaker and speck2f (IF networks only).

Figures per network and target (docs/fidelity.md defines them):

* ``kept``: float output spikes the compiled run also fires, at the same step and neuron,
  over the float output spikes;
* ``added``: compiled output spikes the float run lacks, over the float output spikes;
* ``predicted``: the compile report's prediction of ``kept`` (the quantize pass's
  behaviour check, float vs compiled network, on its own random input of the same steps
  and rate), and ``same input``: the report's figure with the measured run's input as
  the check input (``check_input``, ``nmc compile --check-input``).

The compiled run gets the input padded by the output shift and is read ``shift`` steps
later, so index ``t`` is the response to input ``t``.

    .venv/bin/python bench/fidelity.py [--steps 200] [--targets loihi,loihi2,...] [--doc]

``--doc`` rewrites the table section of docs/fidelity.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nmcompiler import ir
from nmcompiler.api import compile as nmc_compile
from nmcompiler.backend import get_backend
from nmcompiler.ir.errors import NmcError
from nmcompiler.testing.corpus import corpus_cases, corpus_inputs

TARGETS = ("loihi", "loihi2", "spinnaker", "speck2f")
RATE = 0.35
SEEDS = (0, 1)
DOC = Path(__file__).resolve().parents[1] / "docs" / "fidelity.md"


def measure(net: ir.Network, target: str, steps: int, seed: int = 0,
            quantize_options: dict | None = None) -> dict[str, Any]:
    """Compile ``net`` for ``target``, run it on the emulator and compare its outputs
    with ``ir.simulate`` of ``net`` over ``steps`` steps; the compile report's predictions
    with the check's own random input and with the measured run's input."""
    opts = {"check_steps": steps, "check_rate": RATE, **(quantize_options or {})}
    x = corpus_inputs(net, steps, RATE)
    compiled = nmc_compile(net, target, seed=seed, quantize_options=opts, check_input=x)
    shifts = compiled.report["summary"].get("output_shift_steps", {}) or {}
    pad = max([int(v) for v in shifts.values()], default=0)
    ref = ir.simulate(net, x, steps).outputs
    xp = {k: np.concatenate([v, np.zeros((pad, v.shape[1]))]) for k, v in x.items()}
    res = get_backend("emulator").run(compiled, xp, steps + pad, count=False)
    kept = added = total = 0
    for name, a in ref.items():
        s = int(shifts.get(name, 0))
        b = np.asarray(res.outputs[name]).real.reshape(steps + pad, -1)[s:s + steps]
        a = np.asarray(a).real.reshape(steps, -1) != 0
        b = b != 0
        total += int(a.sum())
        kept += int((a & b).sum())
        added += int((b & ~a).sum())
    random_check = nmc_compile(net, target, seed=seed, quantize_options=opts)
    return {
        "kept": kept / total if total else 1.0,
        "added": added / total if total else float(added > 0),
        "float_spikes": total,
        "predicted": reported_kept(random_check.report["passes"]["quantize"]["behaviour"]),
        "predicted_same_input": reported_kept(
            compiled.report["passes"]["quantize"]["behaviour"]),
    }


def reported_kept(beh: dict) -> float | None:
    """The compile report's share of float output spikes kept (the behaviour check's
    ``summary.float_spikes_kept`` over the output populations), else None."""
    summ = beh.get("summary") or {}
    if beh.get("summary_scope") == "outputs" and summ.get("float_spikes_kept") is not None:
        return float(summ["float_spikes_kept"])
    return None


def run(steps: int, targets: tuple[str, ...], quantize_options: dict | None = None,
        seeds: tuple[int, ...] = SEEDS) -> dict[str, dict[str, dict[str, Any]]]:
    """``{target: {case: figures}}`` over the corpus (ordinary float weights)."""
    out: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in targets}
    for case in corpus_cases(grid=False, seeds=seeds):
        net = case.build()
        for t in targets:
            if t.startswith("speck") and not case.integrate_and_fire:
                continue
            try:
                out[t][case.name] = measure(net, t, steps, quantize_options=quantize_options)
            except NmcError as exc:
                out[t][case.name] = {"error": str(exc).splitlines()[0]}
            print(f"  {t:10s} {case.name:42s} {_fmt(out[t][case.name])}", file=sys.stderr)
    return out


def _fmt(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"error: {r['error']}"
    p = "-" if r["predicted"] is None else f"{r['predicted']:.3f}"
    return f"kept {r['kept']:.3f} added {r['added']:.3f} predicted {p} ({r['float_spikes']})"


def _gap(ok: list[dict], key: str) -> tuple[float | None, float | None]:
    """(median |predicted - measured|, the largest signed gap) over networks."""
    gaps = [r[key] - r["kept"] for r in ok if r.get(key) is not None]
    if not gaps:
        return None, None
    return statistics.median(abs(g) for g in gaps), max(gaps, key=abs)


def _f(x: float | None, sign: bool = False) -> str:
    return "-" if x is None else (f"{x:+.3f}" if sign else f"{x:.3f}")


def table(res: dict[str, dict[str, dict[str, Any]]], steps: int) -> str:
    """Markdown: a summary per target, then one row per network."""
    lines = [f"Output agreement over {steps} steps (input rate {RATE}), compiled run on the "
             "emulator vs the float reference; *predicted*: the compile report's float "
             "spikes kept (the quantize pass's check) on its own random input of the "
             "same length and rate; *same input*: the report's figure with the measured "
             "run's input as check input.", "",
             "| target | networks | median kept | min kept | median added | "
             "median predicted | median abs(gap) | largest gap | largest gap, same input |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t, cases in res.items():
        ok = [r for r in cases.values() if "error" not in r]
        if not ok:
            lines.append(f"| {t} | 0 | - | - | - | - | - | - | - |")
            continue
        kept = [r["kept"] for r in ok]
        pred = [r["predicted"] for r in ok if r["predicted"] is not None]
        med, big = _gap(ok, "predicted")
        _, big_same = _gap(ok, "predicted_same_input")
        lines.append(
            f"| {t} | {len(ok)} | {statistics.median(kept):.3f} | {min(kept):.3f} | "
            f"{statistics.median([r['added'] for r in ok]):.3f} | "
            f"{_f(statistics.median(pred) if pred else None)} | {_f(med)} | "
            f"{_f(big, True)} | {_f(big_same, True)} |")
    names = list(dict.fromkeys(n for cases in res.values() for n in cases))
    lines += ["", "Per network: kept / added / predicted.", "",
              "| network | " + " | ".join(res) + " |",
              "|---|" + "---|" * len(res)]
    for n in names:
        cells = []
        for t in res:
            r = res[t].get(n)
            if r is None:
                cells.append("(not IF)" if t.startswith("speck") else "-")
            elif "error" in r:
                cells.append("does not compile")
            else:
                cells.append(f"{r['kept']:.3f} / {r['added']:.3f} / {_f(r['predicted'])}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    errs: dict[str, list[str]] = {}
    for t, c in res.items():
        for n, r in c.items():
            if "error" in r:
                errs.setdefault(r["error"].split(";")[0], []).append(f"{t} {n}")
    if errs:
        lines += ["", "Does not compile (before quantisation; not counted above):", ""]
        lines += [f"- {len(v)} x {k} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
                  for k, v in errs.items()]
    return "\n".join(lines) + "\n"


def write_doc(body: str, command: str, section: str = "fidelity") -> None:
    """Replace the section ``section`` of docs/fidelity.md."""
    text = DOC.read_text(encoding="utf-8")
    block = f"<!-- bench:{section} -->\nCommand: `{command}`\n\n{body.rstrip()}\n" \
            f"<!-- /bench:{section} -->"
    pat = re.compile(rf"<!-- bench:{section} -->.*?<!-- /bench:{section} -->", re.S)
    text = pat.sub(lambda _: block, text) if pat.search(text) else text + "\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--weight-bits", type=int, default=None,
                    help="compile with this weight width (default: each target's)")
    ap.add_argument("--doc", action="store_true", help="rewrite docs/fidelity.md's table")
    a = ap.parse_args(argv)
    targets = tuple(t for t in a.targets.split(",") if t)
    res = run(a.steps, targets, {"weight_bits": a.weight_bits} if a.weight_bits else None)
    body = table(res, a.steps)
    print(body)
    if a.doc:
        cmd = "python bench/fidelity.py " + " ".join(argv if argv is not None else
                                                      sys.argv[1:])
        write_doc(body, cmd.strip(), "fidelity" if a.weight_bits is None
                  else f"fidelity-wb{a.weight_bits}")


if __name__ == "__main__":
    main()
