"""One document, two renderings: `index.md` (images as files) and a self-contained `index.html`
(images embedded as base64 PNG data URIs, no external resource), so the page can be mailed or
opened anywhere.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; } .num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
.note { color: #555; }
"""


def cell(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@dataclass
class Document:
    """An ordered list of blocks: (kind, payload) with kind h1-h3, p, note, pre, table, image."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append((f"h{level}", text))

    def text(self, text: str) -> None:
        self.blocks.append(("p", text))

    def note(self, text: str) -> None:
        self.blocks.append(("note", text))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    def table(self, frame: pd.DataFrame, digits: int = 4) -> None:
        rows = [[cell(v, digits) for v in row] for row in frame.itertuples(index=False)]
        numeric = [
            pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
            for t in frame.dtypes
        ]
        self.blocks.append(("table", ([str(c) for c in frame.columns], rows, numeric)))

    def image(self, relpath: str, caption: str) -> None:
        self.blocks.append(("image", (relpath, caption)))

    def images(self) -> list[str]:
        return [payload[0] for kind, payload in self.blocks if kind == "image"]

    # ------------------------------------------------------------------ markdown

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, payload in self.blocks:
            if kind.startswith("h"):
                out += ["#" * int(kind[1]) + f" {payload}", ""]
            elif kind in ("p", "note"):
                out += [payload if kind == "p" else f"*{payload}*", ""]
            elif kind == "pre":
                out += ["```", payload.rstrip("\n"), "```", ""]
            elif kind == "table":
                header, rows, numeric = payload
                esc = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
                out.append("| " + " | ".join(esc[0]) + " |")
                out.append("|" + "|".join("--:" if n else "---" for n in numeric) + "|")
                out += ["| " + " | ".join(r) + " |" for r in esc[1:]]
                out.append("")
            elif kind == "image":
                relpath, caption = payload
                out += [f"![{caption}]({relpath})", "", f"*{caption}*", ""]
        return "\n".join(out)

    # ------------------------------------------------------------------ html

    def to_html(self, root: Path) -> str:
        """`root` is where image paths are relative to; every image is embedded."""

        def inline(text: str) -> str:
            return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, payload in self.blocks:
            if kind.startswith("h"):
                body.append(f"<{kind}>{html.escape(payload)}</{kind}>")
            elif kind == "p":
                body.append(f"<p>{inline(payload)}</p>")
            elif kind == "note":
                body.append(f'<p class="note">{inline(payload)}</p>')
            elif kind == "pre":
                body.append(f"<pre>{html.escape(payload)}</pre>")
            elif kind == "table":
                header, rows, numeric = payload
                align = ['class="num"' if n else "" for n in numeric]
                head = "".join(f"<th {a}>{html.escape(c)}</th>" for c, a in zip(header, align))
                cells = [
                    "<tr>"
                    + "".join(f"<td {a}>{html.escape(c)}</td>" for c, a in zip(r, align))
                    + "</tr>"
                    for r in rows
                ]
                body.append(f"<table><tr>{head}</tr>{''.join(cells)}</table>")
            elif kind == "image":
                relpath, caption = payload
                data = base64.b64encode((root / relpath).read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img src="data:image/png;base64,{data}" '
                    f'alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}'
                    "</figcaption></figure>"
                )
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )

    def write(self, root: Path) -> tuple[Path, Path]:
        """index.md and index.html into `root` (itself renamed into place when complete)."""
        md, page = root / "index.md", root / "index.html"
        md.write_text(self.to_markdown(), encoding="utf-8")
        page.write_text(self.to_html(root), encoding="utf-8")
        return md, page
