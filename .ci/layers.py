#!/usr/bin/env python3
"""The import order of docs/design.md, enforced: a file under src/ may import
(`crate::NAME`) only top-level modules at or below its own layer. The layers
are the fenced block after the line `Layers, top to bottom` in design.md: one
line a layer, the modules on a line are peers. Run by .ci/purity."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
design = (root / "docs/design.md").read_text()
block = re.search(r"Layers, top to bottom.*?\n```\n(.*?)\n```", design, re.S)
if not block:
    sys.exit("layers: docs/design.md has no `Layers, top to bottom` block")
layer_of = {}
for depth, line in enumerate(block.group(1).splitlines()):
    for name in line.split():
        layer_of[name] = depth

src = root / "src"
modules = {p.stem for p in src.glob("*.rs")} | {p.name for p in src.iterdir() if p.is_dir()}
modules.discard("main")
missing = sorted(m for m in modules if m not in layer_of)
failed = [f"layers: src/{m} is in no layer of docs/design.md" for m in missing]
unknown = sorted(n for n in layer_of if n not in modules)
failed += [f"layers: docs/design.md names `{n}`, which is no module under src/" for n in unknown]

def imported(code):
    """Top-level module names a file refers to through `crate::`."""
    names = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", code))
    for group in re.finditer(r"\bcrate::\{", code):
        depth, i, start, items = 1, group.end(), group.end(), []
        while i < len(code) and depth:
            c = code[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == "," and depth == 1:
                items.append(code[start:i])
                start = i + 1
            i += 1
        items.append(code[start:i - 1])
        for item in items:
            m = re.match(r"\s*([a-z_][a-z0-9_]*)", item)
            if m and m.group(1) != "self":
                names.add(m.group(1))
    return names

checked = 0
for path in sorted(src.rglob("*.rs")):
    rel = path.relative_to(src)
    own = rel.parts[0].removesuffix(".rs")
    if own == "main" or own not in layer_of:
        continue
    code = path.read_text()
    code = code.split("\n#[cfg(test)]")[0]
    code = re.sub(r"//.*", "", code)
    checked += 1
    for name in sorted(imported(code)):
        if name in layer_of and layer_of[name] < layer_of[own]:
            failed.append(
                f"layers: src/{rel} (layer of `{own}`) imports crate::{name}, "
                f"which is above it in docs/design.md's order"
            )
for line in failed:
    print(line, file=sys.stderr)
if failed:
    sys.exit(1)
print(f"layers: {checked} files import only at or below their layer")
