#!/usr/bin/env python3
"""The import order of docs/design.md, enforced: a file under src/ may import
(`crate::PATH`) only modules at or below its own layer. The layers are the
fenced block after the line `Layers, top to bottom` in design.md: one line a
layer, the modules on a line are peers. A key may name a submodule
(`blocklist::refresh`); a file or an imported path belongs to the longest key
that is it or its parent. Run by .ci/purity."""
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
def exists(key):
    """A layer key names a module: `scan`, or a submodule `blocklist::refresh`."""
    path = src.joinpath(*key.split("::"))
    return path.with_suffix(".rs").is_file() or path.is_dir()
unknown = sorted(n for n in layer_of if not exists(n))
failed += [f"layers: docs/design.md names `{n}`, which is no module under src/" for n in unknown]

def layer_key(path):
    """The longest layer key that is `path` or a parent of it."""
    parts = path.split("::")
    for n in range(len(parts), 0, -1):
        key = "::".join(parts[:n])
        if key in layer_of:
            return key
    return None

def expand(prefix, code, i):
    """Paths of a `{a::b, c::{d, e}}` group starting at code[i] (after `{`)."""
    paths, item = [], ""
    while i < len(code):
        c = code[i]
        if c == "{":
            inner, i = expand(prefix + item.strip(), code, i + 1)
            paths += inner
            item = None
        elif c in ",}":
            if item is not None and item.strip() and item.strip() != "self":
                paths.append(prefix + item.strip().split(" as ")[0].strip())
            item = ""
            if c == "}":
                return paths, i
        elif item is not None:
            item += c
        i += 1
    return paths, i

def imported(code):
    """Module paths a file refers to through `crate::`, groups expanded."""
    paths = []
    for m in re.finditer(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*)(\{|[a-z_][a-z0-9_]*)", code):
        if m.group(2) == "{":
            inner, _ = expand(m.group(1), code, m.end())
            paths += inner
        else:
            paths.append(m.group(1) + m.group(2))
    return {p for p in paths if p}

checked = 0
for path in sorted(src.rglob("*.rs")):
    rel = path.relative_to(src)
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    own = layer_key("::".join(parts))
    if parts == ["main"] or own is None:
        continue
    code = path.read_text()
    code = code.split("\n#[cfg(test)]")[0]
    code = re.sub(r"//.*", "", code)
    checked += 1
    for name in sorted(imported(code)):
        key = layer_key(name)
        if key is not None and layer_of[key] < layer_of[own]:
            failed.append(
                f"layers: src/{rel} (layer of `{own}`) imports crate::{name}, "
                f"which is above it in docs/design.md's order"
            )
for line in failed:
    print(line, file=sys.stderr)
if failed:
    sys.exit(1)
print(f"layers: {checked} files import only at or below their layer")
