#!/usr/bin/env python3
"""The library's layering rules (docs/architecture.md "Layers"), checked on the headers themselves:

1. a folder's headers include only the folders of the layers below it (the table ALLOWED);
2. one folder, one namespace: every namespace a header of include/mopo/<F>/ opens is mopo::<F> or inside it
   (core/ is mopo itself, detail/ is mopo::detail);
3. <mopo/mopo.hpp> includes every public header that needs neither MuJoCo nor the Eigen runtime;
4. a header over 450 lines says why at its top (a line with "Length:" in its first 40 lines).

Usage: layers_test.py <project source dir>. Exit 0 when all hold; otherwise one line per violation.
"""
import pathlib
import re
import sys

BASE = {"core", "config", "detail"}  # the base layer: errors, options, seeding, checks
ALLOWED = {
    "core": BASE,
    "config": BASE,
    "detail": BASE,
    "data": BASE,
    "env": BASE,
    "models": BASE,
    "agents": BASE,
    "penalty": BASE | {"models"},
    "rollout": BASE | {"models", "penalty"},
    "train": BASE | {"data", "env", "models", "penalty", "rollout", "agents"},
    "zoo": BASE | {"data", "env", "agents", "rollout", "train"},
    "deploy": BASE | {"agents", "env", "models"},
}
# Not in mopo.hpp: internal, MuJoCo-only, or the LibTorch-free runtime (mopo::deploy, Eigen).
NOT_IN_UMBRELLA = re.compile(r"^mopo/(detail/|env/mujoco/|deploy/(deploy|policy|dynamics|format)\.hpp$|"
                             r"data/hdf5\.hpp$|mopo\.hpp$|version\.hpp$)")
MAX_LINES = 450


def main(root: pathlib.Path) -> int:
    inc = root / "include"
    errors = []
    headers = sorted(inc.glob("mopo/**/*.hpp"))
    for h in headers:
        rel = h.relative_to(inc).as_posix()
        parts = rel.split("/")
        text = h.read_text()
        lines = text.split("\n")
        if len(parts) < 3:
            continue  # mopo.hpp, version.hpp
        folder = parts[1]
        if folder not in ALLOWED:
            errors.append(f"{rel}: folder '{folder}' has no row in ALLOWED (tests/layers_test.py)")
            continue
        for m in re.finditer(r'#include [<"]mopo/([a-z_]+)/', text):
            dep = m.group(1)
            if dep != folder and dep not in ALLOWED[folder]:
                errors.append(f"{rel}: includes mopo/{dep}/ — {folder}/ may include only "
                              f"{', '.join(sorted(ALLOWED[folder]))}")
        own = {"core": "mopo", "detail": "mopo::detail"}.get(folder, "mopo::" + folder)
        for m in re.finditer(r"^\s*(?:inline\s+)?namespace\s+([A-Za-z_:]*)\s*\{", text, re.M):
            name = m.group(1)
            if not name:
                errors.append(f"{rel}: an anonymous namespace in a header")
            elif "::" in name or name == "mopo":
                if not (name == own or name.startswith(own + "::")):
                    errors.append(f"{rel}: opens namespace {name}; {folder}/ is namespace {own}")
            # an unqualified name (detail, mujoco, with_mujoco) nests inside the file's own namespace
        if len(lines) > MAX_LINES and not any("Length:" in l for l in lines[:40]):
            errors.append(f"{rel}: {len(lines)} lines (> {MAX_LINES}) and no 'Length:' reason at its top")
    umbrella = (inc / "mopo/mopo.hpp").read_text()
    included = set(re.findall(r'#include "(mopo/[^"]+)"', umbrella))
    for h in headers:
        rel = h.relative_to(inc).as_posix()
        if not NOT_IN_UMBRELLA.match(rel) and rel not in included:
            errors.append(f"mopo/mopo.hpp: does not include {rel}")
    for e in errors:
        print(e)
    print(f"layers: {len(headers)} headers, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
