"""Layout and import rules of docs/architecture.md (one import root, layered rooms)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = ("lava", "pyNN", "sinabs", "samna", "nest", "nir", "torch", "snntorch", "norse",
          "brian2", "sanafe", "h5py")


ROOT = REPO / "nmcompiler"
#: the rooms inside the one import root; the compiler is everything else in nmcompiler/
ROOMS = ("ir", "backends", "hw_configs")


def _room_of(module: str) -> str:
    """'ir', 'backends', 'hw_configs', 'compiler' or 'other' for an absolute module name."""
    parts = module.split(".")
    if parts[0] != "nmcompiler":
        return "other"
    if len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    return "compiler"


def _files(room: str) -> list[Path]:
    if room == "compiler":
        return sorted(p for p in ROOT.rglob("*.py")
                      if p.relative_to(ROOT).parts[0] not in ROOMS)
    return sorted((ROOT / room).rglob("*.py"))


def imported_modules(room: str) -> set[tuple[str, str]]:
    """(file, imported room or top-level module) for every import statement in a room."""
    out = set()
    for path in _files(room):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module == "nmcompiler":
                    names = [f"nmcompiler.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                rel = path.relative_to(REPO).with_suffix("").parts[: -node.level]
                names = [".".join(rel + ((node.module,) if node.module else ()))]
            for m in names:
                room = _room_of(m)
                out.add((path.name, m.split(".")[0] if room == "other" else room))
    return out


def test_ir_imports_only_numpy_and_the_standard_library():
    ours = {"compiler", "backends", "hw_configs"} | set(VENDOR) | {"scipy", "networkx"}
    bad = {(f, m) for f, m in imported_modules("ir") if m in ours}
    assert not bad, f"ir must import nothing of ours and no toolchain: {sorted(bad)}"


def test_nmcompiler_never_imports_a_backend_by_name():
    bad = {(f, m) for f, m in imported_modules("compiler") if m == "backends"}
    assert not bad, f"nmcompiler finds backends through entry points only: {sorted(bad)}"


def test_import_core_loads_no_vendor_toolchain():
    code = (
        "import sys, nmcompiler, nmcompiler.ir, nmcompiler.backends, nmcompiler.hw_configs\n"
        "import nmcompiler.targets, nmcompiler.backend, nmcompiler.compiled\n"
        f"bad = [m for m in {VENDOR!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "", f"importing the core loaded: {out.stdout.strip()}"


def test_layout_exists():
    for path in ("pyproject.toml", "nmcompiler/ir", "nmcompiler", "nmcompiler/backends",
                 "nmcompiler/hw_configs", "tests",
                 "docs", "bench", "README.md", "Makefile", ".ci/run"):
        assert (REPO / path).exists(), path
    readme = (REPO / "README.md").read_text().splitlines()
    block = "\n".join(readme[:12])
    assert "make demo" in block and "make test" in block
    assert "make test" in (REPO / ".ci/run").read_text()


def test_ir_import_loads_only_the_ir():
    code = ("import sys, nmcompiler.ir\n"
            "print(','.join(sorted(m for m in sys.modules if m.startswith('nmcompiler.')"
            " and not m.startswith('nmcompiler.ir'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "", f"importing nmcompiler.ir loaded: {out.stdout.strip()}"
