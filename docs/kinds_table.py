"""Print the Markdown table of plugin kinds from ``occcore.plugin.KINDS``.

``docs/plugins.md`` embeds its output between cog markers, so
``python -m cogapp --check docs/plugins.md`` fails when the table and the code disagree.
"""
from __future__ import annotations


def table() -> str:
    from occcore.plugin import KINDS
    rows = ["| kind | record | hook | config | default chain | runs | returns | check | "
            "step | output |", "|---|---|---|---|---|---|---|---|---|---|"]
    for k in KINDS:
        chain = ", ".join(f"`{n}`" for n in k.default_chain) or "(none)"
        rows.append(f"| [{k.name}](kinds/{k.name}.md) | `{k.record.__name__}` | `{k.hook}` | "
                    f"`[{k.section}]` | {chain} | {k.runs} | `{k.result}` | "
                    f"`{k.check.__name__}` | `{k.step}` | {f'`{k.output}`' if k.output else ''} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(table(), end="")
