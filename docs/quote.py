"""Helpers for the cog blocks of the docs, the README and the module docstrings: they
quote the one real example (examples/occcore-example) and generate tables from the code,
so ``python -m cogapp --check ...`` fails when a quote and its source drift apart.

Run from the repository root (as .ci/run does); cog blocks import this module with
``sys.path.insert(0, "docs")``.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "occcore-example"


def _out(text: str, indent: int) -> None:
    import cog
    pad = " " * indent
    cog.out("".join((pad + line if line.strip() else line) + "\n"
                    for line in text.rstrip("\n").splitlines()))


def _check_docstring_safe(text: str, where: str) -> None:
    if '"""' in text or "\\" in text:
        raise ValueError(f"{where}: a quote inside a docstring may not hold triple quotes "
                         "or backslashes")


def lines_of(relative: str, *names: str, skip_docstring: bool = True) -> str:
    """The source of ``relative`` (under the example package): the whole file without its
    module docstring, or only the top-level statements that define ``names`` (with their
    decorators), in file order."""
    path = EXAMPLE / relative
    text = path.read_text()
    tree = ast.parse(text)
    source = text.splitlines()
    body = tree.body
    if skip_docstring and body and isinstance(body[0], ast.Expr) and \
            isinstance(getattr(body[0], "value", None), ast.Constant) and \
            isinstance(body[0].value.value, str):
        body = body[1:]
    if names:
        wanted = []
        for node in body:
            defined = {getattr(node, "name", None)} | {
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)}
            if defined & set(names):
                wanted.append(node)
        missing = set(names) - {getattr(n, "name", None) for n in wanted} - {
            t.id for n in wanted for t in getattr(n, "targets", []) if isinstance(t, ast.Name)}
        if missing:
            raise KeyError(f"{relative}: no top-level {', '.join(sorted(missing))}")
        chunks = []
        for node in wanted:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            chunks.append("\n".join(source[first - 1:node.end_lineno]))
        return "\n\n\n".join(chunks) + "\n"
    if not body:
        return ""
    first = min([body[0].lineno] + [d.lineno for d in getattr(body[0], "decorator_list", [])])
    return "\n".join(source[first - 1:]) + "\n"


def python(relative: str, *names: str, indent: int = 0, fence: bool = True,
           docstring: bool = False, header: bool = True) -> None:
    """Quote example source (see :func:`lines_of`) as a fenced block, or indented for a
    reST literal block inside a docstring (``docstring=True``: checked to be safe there)."""
    text = lines_of(relative, *names)
    if header:
        text = f"# examples/occcore-example/{relative}\n" + text
    if docstring:
        _check_docstring_safe(text, relative)
    _out(f"```python\n{text}```" if fence else text, indent)


def entry_points(indent: int = 0, fence: bool = True) -> None:
    """The ``[project.entry-points.occcore]`` table of the example's pyproject.toml."""
    lines = (EXAMPLE / "pyproject.toml").read_text().splitlines()
    start = lines.index("[project.entry-points.occcore]")
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.strip() or line.startswith("["):
            break
        block.append(line)
    text = "# examples/occcore-example/pyproject.toml\n" + "\n".join(block) + "\n"
    _out(f"```toml\n{text}```" if fence else text, indent)


def fields(record: type) -> None:
    """A Markdown table of an attrs record's fields: name, type, default."""
    import attrs
    rows = ["| field | type | default |", "|---|---|---|"]
    for f in attrs.fields(record):
        if f.default is attrs.NOTHING:
            default = "**required**"
        elif isinstance(f.default, attrs.Factory):
            default = f"`{f.default.factory.__name__}()`"
        else:
            default = f"`{f.default!r}`"
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        kind = str(kind).replace("|", "or")     # a Markdown cell cannot hold a bare |
        rows.append(f"| `{f.name}` | `{kind}` | {default} |")
    _out("\n".join(rows), 0)


def check(kind_name: str) -> None:
    """The result check of a kind: its name, its rule (docstring) and its source."""
    from occcore.plugin import kind_of
    function = kind_of(kind_name).check
    doc = inspect.getdoc(function) or ""
    _out(f"`occcore.results.{function.__name__}`: {' '.join(doc.split())}\n\n"
         f"```python\n{inspect.getsource(function)}```", 0)


def example(name: str) -> None:
    """A documentation example from docs/examples/ (tested by tests/test_external_plugin.py)."""
    path = ROOT / "docs" / "examples" / name
    _out(f"```python\n# docs/examples/{name}\n{path.read_text()}```", 0)


def kind_line(kind_name: str) -> None:
    """One paragraph of a kind's row of ``occcore.plugin.KINDS``."""
    from occcore.plugin import kind_of
    k = kind_of(kind_name)
    chain = ", ".join(f"`{n}`" for n in k.default_chain) or "none"
    how = ("every implementation of the chain runs" if k.runs == "all" else
           "the first accepted result of the chain wins")
    _out(f"{k.summary[:1].upper() + k.summary[1:]}. Hook `{k.hook}`, record "
         f"`{k.record.__name__}`, configuration section `[{k.section}]` (default chain: "
         f"{chain}; {how}), result `{k.result}` checked by `{k.check.__name__}`, run by "
         f"`{k.step}`{f', written to `{k.output}`' if k.output else ''}; in-tree plugins in "
         f"`{k.folder}/`.", 0)
