"""Cores, chips and routing entries per chip: nmcompiler's mapping against sPyNNaker's.

For each of three networks (``IF_curr_exp`` populations as in
``bench/compile_vs_spynnaker.py``, connection lists drawn with a fixed seed) the script

1. compiles it with ``nmcompiler.compile(net, "spinnaker", seed=0)`` and lowers it with the
   PyNN backend (``nmc deploy --backend pynn`` writes the same ``run_pynn.py`` +
   ``network.npz``);
2. runs ``run_pynn.py --simulator spinnaker --virtual-board 5`` in ``.venv-spynnaker``
   twice: with our mapping (every slice its own Population pinned to our chip and core:
   sPyNNaker must accept it, then routes, allocates keys and compresses the tables
   itself) and with ``--spynnaker-mapping`` (sPyNNaker partitions at 256 neurons per core
   and places by itself);
3. prints cores used, chips used, routing entries per chip (total and the largest chip)
   before compression and after compression: ours from the route pass
   (``Routes.entries_uncompressed`` / ``entries_per_chip``), sPyNNaker's from its data
   view (``get_uncompressed``) and its pair compressor run as far as possible.

Run: ``.venv/bin/python bench/spynnaker_tables.py [--json out.json]`` (needs
``make spynnaker-venv``); docs/spinnaker_backend.md has the table and this command.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from compile_vs_spynnaker import PYNN, random_lists, to_ir  # noqa: E402

import nmcompiler  # noqa: E402
from nmcompiler.backends.spinnaker import PyNNBackend  # noqa: E402

SPYNNAKER_PY = ROOT / ".venv-spynnaker" / "bin" / "python"

#: (label, populations, neurons each, random source populations per population, p)
NETWORKS = (
    ("ring 10 x 500, p=0.01", 10, 500, 0, 0.01),
    ("20 x 1000, fan-in 5 pops, p=0.01", 20, 1000, 5, 0.01),
    ("40 x 256, fan-in 10 pops, p=0.02", 40, 256, 10, 0.02),
)


def description(n_pops: int, size: int, fan_in: int, p: float, seed: int = 0) -> dict:
    """bench/compile_vs_spynnaker.py's description; ``fan_in = 0``: its ring (self and
    next), else every population is fed by ``fan_in`` distinct random populations."""
    rng = np.random.default_rng(seed)
    if fan_in == 0:
        pairs = [(i, i) for i in range(n_pops)] + [(i, (i + 1) % n_pops)
                                                   for i in range(n_pops)]
    else:
        pairs = [(int(s), t) for t in range(n_pops)
                 for s in rng.choice(n_pops, size=fan_in, replace=False)]
    pres, posts, ptr = [], [], [0]
    for _ in pairs:
        a, b = random_lists(size, size, p, rng)
        pres.append(a)
        posts.append(b)
        ptr.append(ptr[-1] + a.shape[0])
    nnz = ptr[-1]
    return {
        "pop_sizes": np.full(n_pops, size, dtype=np.int64),
        "pop_labels": np.array([f"p{i}" for i in range(n_pops)]),
        "proj_pre": np.array([a for a, _ in pairs], dtype=np.int64),
        "proj_post": np.array([b for _, b in pairs], dtype=np.int64),
        "proj_indptr": np.array(ptr, dtype=np.int64),
        "pre": np.concatenate(pres), "post": np.concatenate(posts),
        "weight": np.full(nnz, 0.1, dtype=np.float32), "delay": np.ones(nnz, dtype=np.int32),
        "dt": np.float64(1.0), **{k: np.float64(v) for k, v in PYNN.items()},
    }


def _stats(per_chip: dict[str, int] | np.ndarray) -> tuple[int, int, int]:
    vals = np.asarray(list(per_chip.values()) if isinstance(per_chip, dict) else per_chip)
    vals = vals[vals > 0]
    return int(vals.sum()), int(vals.max(initial=0)), int(vals.size)


def spynnaker(pynn_dir: Path, own: bool, timeout: float) -> dict:
    out = pynn_dir / f"mapping_{'ours' if own else 'spynnaker'}.json"
    cmd = [str(SPYNNAKER_PY), str(pynn_dir / "run_pynn.py"), "--simulator", "spinnaker",
           "--virtual-board", "5", "--steps", "1", "--mapping-out", str(out), "--quiet",
           "--out", str(pynn_dir / "unused.npz")]
    if not own:
        cmd.append("--spynnaker-mapping")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=pynn_dir)
    if r.returncode != 0 or not out.exists():
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return {"status": "failed: " + " | ".join(tail)}
    m = json.loads(out.read_text())
    places = m["placements"]
    return {
        "status": "ok", "seconds": time.perf_counter() - t0,
        "cores": len(places), "chips": len({(p[3], p[4]) for p in places}),
        "uncompressed": _stats(m["tables"].get("uncompressed", {})),
        "compressed": _stats(m["tables"].get("compressed", {})),
        "placements": places, "pinned": m.get("pinned", {}),
        "unpinned": m.get("unpinned", []),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    if not SPYNNAKER_PY.exists():
        sys.exit(f"missing {SPYNNAKER_PY}: run `make spynnaker-venv`")
    rows = []
    with tempfile.TemporaryDirectory(prefix="nmc-spynnaker-tables-") as tmp:
        for label, n_pops, size, fan_in, p in NETWORKS:
            net = to_ir(description(n_pops, size, fan_in, p))
            t0 = time.perf_counter()
            cn = nmcompiler.compile(net, "spinnaker", seed=0)
            pynn_dir = PyNNBackend().lower(cn, Path(tmp) / f"net{len(rows)}")
            lower_s = time.perf_counter() - t0
            chips = {tuple(c) for c in np.asarray(cn.placement.coords)[:, :2].tolist()}
            ours = {"cores": int(cn.n_cores), "chips": len(chips),
                    "uncompressed": _stats(cn.routes.entries_uncompressed),
                    "compressed": _stats(cn.routes.entries_per_chip),
                    "seconds": lower_s}
            pinned = spynnaker(pynn_dir, True, args.timeout)
            free = spynnaker(pynn_dir, False, args.timeout)
            if pinned.get("status") == "ok":
                got = {p[0]: [p[3], p[4], p[5]] for p in pinned.pop("placements")}
                pinned["placement_matches"] = all(got.get(k) == v for k, v in
                                                  pinned.pop("pinned").items())
                pinned["unpinned_slices"] = len(pinned.pop("unpinned"))
            free.pop("placements", None)
            row = {"network": label, "synapses": int(sum(
                int(np.asarray(pr.conn.weight).size) for pr in net.projections.values())),
                "nmcompiler": ours, "spynnaker_pinned": pinned, "spynnaker_own": free}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(table(rows))


def _cell(r: dict, key: str) -> str:
    if r.get("status", "ok") != "ok":
        return str(r["status"])[:60]
    total, mx, n = r[key]
    return f"{total:,} / {mx} ({n} chips)"


def table(rows: list[dict]) -> str:
    out = ["| network | mapping | cores | chips with cores | entries before compression "
           "(total / max per chip) | after compression (total / max per chip) |",
           "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        for name, key in (("nmcompiler route pass", "nmcompiler"),
                          ("sPyNNaker on our placement", "spynnaker_pinned"),
                          ("sPyNNaker's own mapping", "spynnaker_own")):
            r = row[key]
            if r.get("status", "ok") != "ok":
                out.append(f"| {row['network']} | {name} | {r['status'][:80]} | | | |")
                continue
            extra = ""
            if "placement_matches" in r:
                extra = " (placement = ours)" if r["placement_matches"] else " (DIFFERS)"
                if r.get("unpinned_slices"):
                    extra += f", {r['unpinned_slices']} slices left to sPyNNaker"
            out.append(f"| {row['network']} | {name}{extra} | {r['cores']} | {r['chips']} | "
                       f"{_cell(r, 'uncompressed')} | {_cell(r, 'compressed')} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
