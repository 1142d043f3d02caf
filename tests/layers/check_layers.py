#!/usr/bin/env python3
"""The layer rule (docs/architecture.md): a folder of src/ and include/cpi/ includes only its own
headers and those of the layers below it, so the dependencies point one way. Also: libvirt's
headers only where the driver module talks to libvirt, libarchive's only where images are read
and written. Exits 1 and names every include that breaks the rule.

Usage: check_layers.py [REPO_ROOT]"""

import pathlib
import re
import sys

# Each layer and the layers it may include (besides itself and cpi/errors.hpp, which any may).
ALLOWED = {
    "util": set(),
    "config": {"util"},
    "agent": {"config", "util"},
    "xml": {"agent", "config", "util"},
    "stemcell": {"agent", "config", "util"},
    "virt": {"config", "util"},
    "cloud": {"virt", "xml", "stemcell", "agent", "config", "util"},
    "actions": {"cloud", "virt", "xml", "stemcell", "agent", "config", "util"},
    "tools": {"cloud", "virt", "xml", "stemcell", "agent", "config", "util"},
    "rpc": {"actions", "cloud", "config", "util"},
}
# System headers only some layers may use.
RESTRICTED = {
    "libvirt/": {"virt", "cloud", "tools"},
    "archive": {"stemcell", "agent"},  # archive.h, archive_entry.h
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def layer_of(path: pathlib.Path, root: pathlib.Path):
    rel = path.relative_to(root).parts
    if rel[0] == "include":  # include/cpi/<layer>/...
        return rel[2] if len(rel) > 3 else None
    if rel[0] == "src":  # src/<layer>/... or src/driver/<layer>/...
        if rel[1] == "driver":
            return rel[2] if len(rel) > 3 else "driver"
        return rel[1] if len(rel) > 2 else None
    return None


def check(root: pathlib.Path):
    problems = []
    files = [p for base in (root / "src", root / "include" / "cpi") for p in base.rglob("*")
             if p.suffix in (".hpp", ".cpp", ".inl", ".h")]
    if not files:
        return [f"no sources found below {root}"], 0
    for path in sorted(files):
        layer = layer_of(path, root)
        if layer is None or layer == "driver":  # main.cpp, the module's entry points: any
            continue
        if layer not in ALLOWED:
            problems.append(f"{path.relative_to(root)}: folder '{layer}' has no place in the "
                            "layer rule (add it to tests/layers/check_layers.py and "
                            "docs/architecture.md)")
            continue
        for kind, name in INCLUDE.findall(path.read_text(encoding="utf-8")):
            if kind == '"' and name.startswith("cpi/"):
                parts = name.split("/")
                if len(parts) == 2:  # cpi/errors.hpp
                    continue
                target = parts[1]
                if target != layer and target not in ALLOWED[layer]:
                    problems.append(f"{path.relative_to(root)}: {layer} includes {name}: "
                                    f"{layer} may include only "
                                    f"{', '.join(sorted(ALLOWED[layer])) or 'nothing else'}")
            elif kind == "<":
                for prefix, layers in RESTRICTED.items():
                    if name.startswith(prefix) and layer not in layers:
                        problems.append(f"{path.relative_to(root)}: <{name}> is for "
                                        f"{', '.join(sorted(layers))} only")
    return problems, len(files)


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                        pathlib.Path(__file__).resolve().parents[2])
    problems, count = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"layer rule: {len(problems)} include(s) point the wrong way")
        return 1
    print(f"layer rule: {count} files checked, every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
