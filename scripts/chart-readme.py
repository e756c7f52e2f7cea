#!/usr/bin/env python3
"""Writes the values table of charts/baton/README.md from the `# --` comments of values.yaml.

Like helm-docs: a `# -- text` comment documents the key below it (and its whole subtree, whose
default is shown as JSON). Every value must be documented, by its own comment or an
ancestor's; an undocumented value is an error. The README keeps everything up to the marker
line; the table below it is generated.

    python3 scripts/chart-readme.py           # rewrite the README
    python3 scripts/chart-readme.py --check   # exit 1 if the README is not up to date

Python 3 standard library only, so values.yaml sticks to a plain YAML subset: block mappings,
block sequences, scalars and one-line flow sequences of scalars; anything else is an error.
"""

import argparse
import html
import json
import re
import sys
from pathlib import Path

CHART = Path(__file__).resolve().parent.parent / "charts" / "baton"
MARKER = "<!-- Everything below is generated from values.yaml by scripts/chart-readme.py: edit values.yaml, then run it. -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*):(?:[ ]+(?P<value>.*))?$")
DOC = re.compile(r"^(?P<indent> *)# -- (?P<text>.*)$")


class ValuesError(Exception):
    """values.yaml uses YAML this script does not read, or leaves a value undocumented."""


def strip_comment(text):
    """`value  # comment` -> `value`, outside quotes."""
    quote = None
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] == " "):
            return text[:i].rstrip()
    return text.rstrip()


def scalar(text, where):
    text = strip_comment(text.strip())
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise ValuesError(f"{where}: unterminated string {text}")
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return {}
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [scalar(item, where) for item in inner.split(",")] if inner else []
    if text[:1] in "{[|>&*!" or text.startswith("- "):
        raise ValuesError(f"{where}: unsupported YAML {text!r}")
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"-?[0-9]+\.[0-9]+", text):
        return float(text)
    return text


def lines_of(text):
    """(line number, indent, content) of each line that is neither blank nor a comment."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            if "\t" in line[: len(line) - len(line.lstrip())]:
                raise ValuesError(f"values.yaml:{number}: tab in indentation")
            out.append((number, len(line) - len(line.lstrip()), stripped))
    return out


def parse_block(lines, start, indent):
    """Parses the mapping or sequence at `indent` starting at lines[start]; returns (value, next)."""
    number, _, content = lines[start]
    if content.startswith("- ") or content == "-":
        items, i = [], start
        while i < len(lines) and lines[i][1] == indent and (lines[i][2].startswith("- ") or lines[i][2] == "-"):
            number, _, content = lines[i]
            rest = content[2:].strip()
            if KEY.match(rest):
                # `- key: value` opens a mapping whose keys sit at indent + 2
                inner = [(number, indent + 2, rest)]
                j = i + 1
                while j < len(lines) and lines[j][1] > indent:
                    inner.append(lines[j])
                    j += 1
                value, _ = parse_block(inner, 0, indent + 2)
                items.append(value)
                i = j
            else:
                items.append(scalar(rest, f"values.yaml:{number}"))
                i += 1
        return items, i
    mapping, i = {}, start
    while i < len(lines) and lines[i][1] == indent:
        number, _, content = lines[i]
        match = KEY.match(" " * indent + content)
        if not match:
            raise ValuesError(f"values.yaml:{number}: expected `key: value`, got {content!r}")
        key, value = match["key"], match["value"]
        if value is not None and strip_comment(value) != "":
            mapping[key] = scalar(value, f"values.yaml:{number}")
            i += 1
        elif i + 1 < len(lines) and lines[i + 1][1] > indent:
            mapping[key], i = parse_block(lines, i + 1, lines[i + 1][1])
        elif i + 1 < len(lines) and lines[i + 1][1] == indent and lines[i + 1][2].startswith("-"):
            mapping[key], i = parse_block(lines, i + 1, indent)  # a sequence not indented under its key
        else:
            mapping[key] = None
            i += 1
    if i < len(lines) and lines[i][1] > indent:
        raise ValuesError(f"values.yaml:{lines[i][0]}: unexpected indentation")
    return mapping, i


def documented(text):
    """{dotted key: description} from the `# --` comments, in file order."""
    docs, stack, pending = {}, [], None
    for number, line in enumerate(text.splitlines(), 1):
        doc = DOC.match(line)
        if doc:
            pending = doc["text"].strip()
            continue
        if line.strip().startswith("#") or not line.strip():
            if line.strip().startswith("# ") and pending is not None and not line.strip().startswith("# --"):
                pending += " " + line.strip()[2:].strip()  # continuation of a description
            continue
        match = KEY.match(line)
        if not match:
            if pending is not None:
                raise ValuesError(f"values.yaml:{number}: a `# --` comment must precede a key")
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if pending is not None:
            docs[".".join(k for _, k in stack)] = pending
            pending = None
    return docs


def leaves(value, path=""):
    """Dotted keys of the values that are not mappings (or are empty mappings)."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, f"{path}.{key}" if path else key)
    else:
        yield path


def lookup(values, dotted):
    for part in dotted.split("."):
        values = values[part]
    return values


def type_name(value):
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object",
            type(None): "null"}[type(value)]


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def table(values_text):
    values, rest = parse_block(lines_of(values_text), 0, 0)
    if rest != len(lines_of(values_text)):
        raise ValuesError("values.yaml: could not read to the end")
    docs = documented(values_text)
    for leaf in leaves(values):
        parts = leaf.split(".")
        if not any(".".join(parts[:n]) in docs for n in range(1, len(parts) + 1)):
            raise ValuesError(f"values.yaml: {leaf} has no `# --` description (on it or on a key above it)")
    rows = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for key, text in docs.items():
        value = lookup(values, key)
        default = json.dumps(value, ensure_ascii=False, separators=(", ", ": ") if not isinstance(value, dict) else (",", ":"))
        rows.append(f"| `{key}` | {type_name(value)} | <code>{cell(html.escape(default, quote=False))}</code> | {cell(text)} |")
    return "\n".join(rows) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is not up to date")
    args = parser.parse_args()
    readme_path = CHART / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    if MARKER not in readme:
        sys.exit(f"{readme_path}: no marker line {MARKER!r}")
    try:
        generated = table((CHART / "values.yaml").read_text(encoding="utf-8"))
    except ValuesError as e:
        sys.exit(f"chart-readme: {e}")
    wanted = readme[: readme.index(MARKER) + len(MARKER)] + "\n\n" + generated
    if args.check:
        if readme != wanted:
            sys.exit(f"{readme_path} is out of date: run python3 scripts/chart-readme.py")
        return
    if readme != wanted:
        readme_path.write_text(wanted, encoding="utf-8")


if __name__ == "__main__":
    main()
