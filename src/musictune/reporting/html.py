"""One document, two renderings: `index.md` (images as files) and a self-contained `index.html`
(images embedded as base64 PNGs, so the page can be mailed); and how figures are written."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from musictune.training.baselines import Figures

UNDEFINED = "n/a (constant)"  # Spearman's rho of a constant prediction
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


def format_mean_sd(mean: float, sd: float, digits: int = 3) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + ("" if np.isnan(sd) else f" ± {sd:.{digits}f}")


def test_cell(r: dict) -> str:
    """A summary row's test metric as the table and the console read it."""
    return f"{r['test_metric']} {format_mean_sd(r['test_mean'], r['test_sd'])} (n={r['seeds']})"


def signed(mean: float, sd: float) -> str:
    """A difference: `+0.012 ± 0.034` (no sd: `+0.012`)."""
    return f"{mean:+.3f}" + ("" if math.isnan(sd) else f" ± {sd:.3f}")


def figures_cell(f: Figures, metric: str) -> str:
    """A comparison row's mean ± sd of `metric`; `n/a (constant)` where undefined."""
    mean, sd = f.mean_sd(metric)
    return UNDEFINED if mean is None else format_mean_sd(mean, sd)


def metric_label(metric: str) -> str:
    """Column heads: `macro F1`, `MSE`, `Spearman`, `Spearman energy`."""
    if metric.startswith("spearman_"):
        return "Spearman " + metric.removeprefix("spearman_")
    return {"macro_f1": "macro F1", "mse": "MSE", "spearman": "Spearman"}.get(metric, metric)


def cell(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


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

    def table(self, frame: pd.DataFrame) -> None:
        rows = [[cell(v) for v in row] for row in frame.itertuples(index=False)]
        types = pd.api.types
        numeric = [types.is_numeric_dtype(t) and not types.is_bool_dtype(t) for t in frame.dtypes]
        self.blocks.append(("table", ([str(c) for c in frame.columns], rows, numeric)))

    def image(self, relpath: str, caption: str) -> None:
        self.blocks.append(("image", (relpath, caption)))

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
                out += ["| " + " | ".join(r) + " |" for r in esc[1:]] + [""]
            elif kind == "image":
                relpath, caption = payload
                out += [f"![{caption}]({relpath})", "", f"*{caption}*", ""]
        return "\n".join(out)

    def _html_block(self, kind: str, payload, root: Path) -> str:
        if kind.startswith("h"):
            return f"<{kind}>{html.escape(payload)}</{kind}>"
        if kind in ("p", "note"):
            return ("<p>" if kind == "p" else '<p class="note">') + f"{_inline(payload)}</p>"
        if kind == "pre":
            return f"<pre>{html.escape(payload)}</pre>"
        if kind == "table":
            header, rows, numeric = payload
            align = ['class="num"' if n else "" for n in numeric]

            def line(cells: list[str], tag: str) -> str:
                return "".join(f"<{tag} {a}>{html.escape(c)}</{tag}>" for c, a in zip(cells, align))

            body = "".join(f"<tr>{line(r, 'td')}</tr>" for r in rows)
            return f"<table><tr>{line(header, 'th')}</tr>{body}</table>"
        relpath, caption = payload
        data = base64.b64encode((root / relpath).read_bytes()).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def to_html(self, root: Path) -> str:
        """`root` is where image paths are relative to; every image is embedded."""
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        body += [self._html_block(kind, payload, root) for kind, payload in self.blocks]
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )

    def write(self, root: Path) -> None:
        """index.md and index.html into `root`."""
        (root / "index.md").write_text(self.to_markdown(), encoding="utf-8")
        (root / "index.html").write_text(self.to_html(root), encoding="utf-8")
