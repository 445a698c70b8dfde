"""Layout and import rules of DESIGN.md section 1."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = ("lava", "pyNN", "sinabs", "samna", "nest", "nir", "torch", "snntorch", "norse",
          "brian2", "sanafe", "h5py")


def imported_modules(package: str) -> set[tuple[str, str]]:
    """(file, top-level module) for every import statement in a package."""
    out = set()
    for path in sorted((REPO / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out |= {(path.name, a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.add((path.name, node.module.split(".")[0]))
    return out


def test_ir_imports_only_numpy_and_the_standard_library():
    ours = {"nmcompiler", "backends", "hw_configs"} | set(VENDOR) | {"scipy", "networkx"}
    bad = {(f, m) for f, m in imported_modules("ir") if m in ours}
    assert not bad, f"ir must import nothing of ours and no toolchain: {sorted(bad)}"


def test_nmcompiler_never_imports_a_backend_by_name():
    bad = {(f, m) for f, m in imported_modules("nmcompiler") if m == "backends"}
    assert not bad, f"nmcompiler finds backends through entry points only: {sorted(bad)}"


def test_import_core_loads_no_vendor_toolchain():
    code = (
        "import sys, ir, nmcompiler, backends, hw_configs\n"
        "import nmcompiler.targets, nmcompiler.backend, nmcompiler.compiled\n"
        f"bad = [m for m in {VENDOR!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "", f"importing the core loaded: {out.stdout.strip()}"


def test_layout_exists():
    for path in ("pyproject.toml", "ir", "nmcompiler", "backends", "hw_configs", "tests",
                 "docs", "bench", "README.md", "Makefile", ".ci/run"):
        assert (REPO / path).exists(), path
    readme = (REPO / "README.md").read_text().splitlines()
    block = "\n".join(readme[:12])
    assert "make demo" in block and "make test" in block
    assert "make test" in (REPO / ".ci/run").read_text()
