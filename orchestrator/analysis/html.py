"""report.html: the study's report as one self-contained file a reviewer opens offline.

Built from the study directory alone: report.md's text (report_files writes both) rendered
with markdown-it, every plot embedded as a data URI, the tuning stage's own report and
best_config.yaml inlined, verdict cells coloured, every table sortable by a small inline
script, and a print style. Nothing in it refers to the network; links to files of the
study are kept as their text.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from markdown_it import MarkdownIt

from .stats import ESSENTIAL, HARMFUL, INCONCLUSIVE, NEGLIGIBLE

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1200px;
       padding: 0 1em; color: #212529; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #dee2e6; padding-bottom: .2em; margin-top: 1.6em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: 13px; }
th, td { border: 1px solid #dee2e6; padding: .25em .5em; vertical-align: top; }
th { background: #f1f3f5; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[data-sort="asc"]::after { content: " \\25B2"; } th[data-sort="desc"]::after { content: " \\25BC"; }
tr:nth-child(even) td { background: #f8f9fa; }
td.v-essential { color: #2b8a3e; font-weight: 600; } td.v-harmful { color: #c92a2a; font-weight: 600; }
td.v-negligible { color: #1971c2; } td.v-inconclusive { color: #495057; } td.v-interaction { color: #e67700; }
blockquote { border-left: 4px solid #fab005; background: #fff9db; margin: 1em 0; padding: .4em 1em; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0 .2em; }
pre { background: #f8f9fa; padding: .6em; overflow-x: auto; }
code { font-size: 12px; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  .scroll { overflow: visible; }
  table { font-size: 8pt; width: 100%; } th { position: static; }
  th::after { content: "" !important; }
  tr, img, blockquote, pre { page-break-inside: avoid; }
  h2, h3 { page-break-after: avoid; }
}
"""

SCRIPT = """
document.querySelectorAll("table").forEach(function (t) {
  var heads = t.querySelectorAll("th");
  heads.forEach(function (th, i) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var body = t.tBodies[0];
      if (!body) { return; }
      var asc = th.getAttribute("data-sort") !== "asc";
      heads.forEach(function (h) { h.removeAttribute("data-sort"); });
      th.setAttribute("data-sort", asc ? "asc" : "desc");
      function key(r) {
        var s = r.cells[i] ? r.cells[i].textContent.trim() : "";
        var m = s.match(/^[<>~]?\\s*([-+]?[0-9]*[.]?[0-9]+(e[-+]?[0-9]+)?)/i);
        return m ? [0, parseFloat(m[1])] : [1, s.toLowerCase()];
      }
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var c = (x[0] - y[0]) || (x[1] < y[1] ? -1 : (x[1] > y[1] ? 1 : 0));
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_md = MarkdownIt("commonmark", {"html": False}).enable("table")
_VERDICTS = (ESSENTIAL, HARMFUL, NEGLIGIBLE, INCONCLUSIVE, "interaction")


def render(markdown_text: str, base: Path) -> str:
    """Markdown to HTML; images under ``base`` embedded as data URIs, links reduced to their text."""
    body = _md.render(markdown_text)
    body = re.sub(r'<img src="([^"]*)" alt="([^"]*)"', lambda m: _image(m, base), body)
    body = re.sub(r'<a href="(?!#)[^"]*">(.*?)</a>', r"\1", body, flags=re.S)
    body = re.sub(r"<table>", '<div class="scroll"><table>', body).replace("</table>", "</table></div>")
    return re.sub(r"<td>(" + "|".join(_VERDICTS) + r")\b", r'<td class="v-\1">\1', body)


def _image(m: re.Match, base: Path) -> str:
    src, alt = html.unescape(m.group(1)), m.group(2)
    path = (base / src).resolve()
    mime = MIME.get(path.suffix.lower())
    if mime is None or not path.is_file() or not path.is_relative_to(base.resolve()):
        return f'<img alt="{alt} (not embedded: {html.escape(src)})"'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:{mime};base64,{data}" alt="{alt}"'


def build_html(study_dir: Path, text: str) -> str:
    """The whole report.html of a study directory whose report.md is `text`."""
    study_dir = Path(study_dir)
    title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), "Ablation report")
    parts = [render(text, study_dir)]
    tuning = study_dir / "tuning" / "report.md"
    if tuning.is_file():
        parts += ['<h2 id="tuning-details">Tuning stage: details</h2>',
                  render(_demote(tuning.read_text()), tuning.parent)]
    best = study_dir / "best_config.yaml"
    if best.is_file():
        parts += ['<h2 id="best-config">best_config.yaml</h2>',
                  f"<pre><code>{html.escape(best.read_text())}</code></pre>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(parts) + f"\n<script>{SCRIPT}</script>\n</body></html>\n")


def _demote(text: str) -> str:
    """Headings one level down (the tuning report sits inside the study's)."""
    return re.sub(r"^(#{1,5}) ", r"#\1 ", text, flags=re.M)
