"""The report's two pages from its sections: Markdown (tables as pandas writes them) and one self-contained
HTML page (figures embedded, a table of contents)."""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup, escape

from bench.report.sections import Section


def _md_table(df: pd.DataFrame) -> str:
    """pandas' own Markdown (tabulate); numbers are formatted as strings before they get here."""
    return df.to_markdown(index=False, floatfmt=".4g", missingval="", disable_numparse=True)


def render_markdown(title: str, sections: list[Section], out_dir: Path) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# {title}",
        f"_Generated {now} from the stored results; rerun `python -m bench.report {out_dir}` to refresh._",
    ]
    for s in sections:
        parts.append(f"## {s.title}")
        parts += [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in s.lead]
        parts += s.text
        parts += [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in s.images]  # figures, then details
        for caption, t in s.tables:
            parts += [f"**{caption}**", _md_table(t)]
    return "\n\n".join(parts) + "\n"


HTML_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; font-size: 12px; } td, th { border: 1px solid #ccc; padding: 2px 6px; }
img { max-width: 100%; } nav ol { columns: 2; }
</style></head>
<body>
<h1>{{ title }}</h1>
<nav><b>Contents</b><ol>
{% for s in sections %}<li><a href="#s{{ loop.index }}">{{ s.title }}</a></li>{% endfor %}
</ol></nav>
{% for s in sections %}
<h2 id="s{{ loop.index }}">{{ s.title }}</h2>
{% for image in s.lead %}<figure><img alt="{{ image.alt }}" src="data:image/png;base64,{{ image.data }}"></figure>
{% endfor %}
{% for block in s.blocks %}{% if block.bullets %}<ul>{% for item in block.bullets %}<li>{{ item }}</li>{% endfor %}</ul>
{% else %}<p>{{ block.text }}</p>
{% endif %}{% endfor %}
{% for image in s.images %}<figure><img alt="{{ image.alt }}" src="data:image/png;base64,{{ image.data }}"></figure>
{% endfor %}
{% for caption, table in s.tables %}<h4>{{ caption }}</h4>
{{ table }}
{% endfor %}
{% endfor %}
</body></html>
""")


def _inline(t: str) -> Markup:
    """Markdown's **bold** and `code` in one line of text, escaped otherwise."""
    t = str(escape(t))
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    return Markup(re.sub(r"`(.+?)`", r"<code>\1</code>", t))


def _blocks(lines: list[str]) -> list[dict]:
    """Paragraphs and runs of '- ' bullets, as the template takes them."""
    out: list[dict] = []
    for line in lines:
        if line.startswith("- "):
            if not (out and "bullets" in out[-1]):
                out.append({"bullets": []})
            out[-1]["bullets"].append(_inline(line[2:]))
        else:
            out.append({"text": _inline(line)})
    return out


def _embedded(p: Path) -> dict:
    return {"alt": p.stem, "data": base64.b64encode(p.read_bytes()).decode()}


def render_html(title: str, sections: list[Section]) -> str:
    """One self-contained page: the figures embedded, a table of contents, the tables as pandas writes them."""
    return HTML_TEMPLATE.render(
        title=title,
        sections=[
            {
                "title": s.title,
                "blocks": _blocks(s.text),
                "lead": [_embedded(p) for p in s.lead],
                "images": [_embedded(p) for p in s.images],
                "tables": [
                    (c, Markup(t.rename_axis(columns=None).to_html(index=False, na_rep=""))) for c, t in s.tables
                ],
            }
            for s in sections
        ],
    )
