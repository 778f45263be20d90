"""The course website's pages: MyST's site content (``_build/site``) -> static HTML (``_build/html``).

Jupyter Book 2 runs this as the ``render`` command of the site template in this folder (template.yml), after it has
parsed and executed every page, with ``BUILD_DIRECTORY`` set to the folder to write. It reads MyST's own output from
disk, next to that folder: ``site/config.json`` (projects, pages, table of contents), ``site/content/<slug>.json`` (each
page's syntax tree, formulas already typeset by KaTeX, notebook outputs attached), ``site/public/`` (images and
notebooks referenced by the pages), ``site/myst.search.json`` (the search index).

Standard library only (Pygments, if importable, colours the code). Every page gets: the navigation (README, then the
lectures and exercises in file order), a Binder button that opens its notebook in JupyterLab, a download link for the
notebook, previous/next links in that order, and the search box. Notebook outputs: images, text, HTML, and plotly
figures drawn by the plotly.js that ships in the plotly wheel (so a widget cell, whose output also carries its
kernel-free plotly animation, shows that animation). Anything this renderer cannot show faithfully (a node type it
does not know, a widget without a plotly fallback, a formula KaTeX did not typeset) is a problem: it is reported and
the build fails, so nothing is dropped from a page silently.
"""
from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BINDER_BADGE = re.compile(r"https://mybinder\.org/v2/gh/([^/\s)]+/[^/\s)]+)/")


def esc(s) -> str:
    return html.escape(str(s), quote=True)


try:  # colour the code if Pygments is there (it comes with JupyterLab); plain <pre> otherwise
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    def code_html(value: str, lang: str | None) -> str:
        try:
            lexer = get_lexer_by_name(lang or "python")
        except Exception:  # noqa: BLE001 - an unknown language is shown plain
            return f"<pre><code>{esc(value)}</code></pre>"
        return highlight(value, lexer, HtmlFormatter(nowrap=False, cssclass="highlight"))

    def code_css() -> str:
        return HtmlFormatter(style="default").get_style_defs(".highlight")
except ImportError:  # pragma: no cover
    def code_html(value: str, lang: str | None) -> str:
        return f"<pre><code>{esc(value)}</code></pre>"

    def code_css() -> str:
        return ""


class Page:
    """One page: its place in the site, and what rendering it found."""

    def __init__(self, slug: str, url: str, title: str, data: dict):
        self.slug, self.url, self.title, self.data = slug, url, title, data
        self.depth = url.count("/")  # "" -> 0 (the index), "a/" -> 1, "a/b/" -> 2
        self.prefix = "../" * self.depth  # from this page to the site root
        self.problems: list[str] = []
        self.counts = {"images": 0, "plotly": 0, "math": 0, "widgets": 0}
        self.plotly_json: list[str] = []


class Renderer:
    def __init__(self, site: Path, out: Path, public: Path, binder_repo: str | None):
        self.site, self.out, self.public, self.binder_repo = site, out, public, binder_repo
        self.page: Page | None = None

    # ---- links ----
    def href(self, url: str) -> str:
        """A URL from MyST's tree ("/slug#x", "/file.png", "https://...") as a link relative to the current page."""
        if not url or not url.startswith("/") or url.startswith("//"):
            return url
        path, _, frag = url[1:].partition("#")
        if path and "." not in path.rsplit("/", 1)[-1]:  # a page: its folder
            path = path.rstrip("/") + "/"
        return self.page.prefix + path + (f"#{frag}" if frag else "")

    def problem(self, msg: str) -> None:
        self.page.problems.append(msg)

    # ---- the tree ----
    def children(self, node: dict) -> str:
        return "".join(self.node(c) for c in node.get("children", []))

    def node(self, n: dict) -> str:  # noqa: C901 - one branch per node type, in one place
        t = n.get("type")
        if n.get("visibility") == "remove":
            return ""
        kids = lambda: self.children(n)  # noqa: E731
        ident = n.get("html_id") or n.get("identifier")
        idattr = f' id="{esc(ident)}"' if ident and t not in ("link", "crossReference", "footnoteReference") else ""
        if t == "root":
            return kids()
        if t == "block":
            kind = n.get("kind") or ""
            inner = kids()
            if n.get("visibility") == "hide":
                inner = f"<details><summary>hidden cell</summary>{inner}</details>"
            cls = "cell code-cell" if kind == "notebook-code" else ("cell" if kind else "block")
            return f'<div class="{cls}"{idattr}>{inner}</div>'
        if t == "text":
            return esc(n.get("value", ""))
        if t == "paragraph":
            return f"<p>{kids()}</p>"
        if t == "heading":
            d = min(max(int(n.get("depth", 2)), 1), 6)
            d = max(d, 2)  # one <h1> per page: the title
            anchor = f' <a class="anchor" href="#{esc(ident)}" aria-label="link to this section">#</a>' if ident else ""
            return f"<h{d}{idattr}>{kids()}{anchor}</h{d}>"
        simple = {"emphasis": "em", "strong": "strong", "superscript": "sup", "subscript": "sub", "delete": "del",
                  "blockquote": "blockquote", "smallcaps": "span", "underline": "u", "definitionList": "dl",
                  "definitionTerm": "dt", "definitionDescription": "dd", "caption": "figcaption", "legend": "div",
                  "admonitionTitle": "p", "span": "span", "div": "div", "listItem": "li", "tableRow": "tr",
                  "keyboard": "kbd", "aside": "aside", "details": "details", "summary": "summary"}
        if t in simple:
            tag = simple[t]
            cls = {"smallcaps": "smallcaps", "admonitionTitle": "admonition-title", "legend": "legend"}.get(t)
            cls = f' class="{cls}"' if cls else (f' class="{esc(n["class"])}"' if n.get("class") else "")
            return f"<{tag}{idattr}{cls}>{kids()}</{tag}>"
        if t == "inlineCode":
            return f"<code>{esc(n.get('value', ''))}</code>"
        if t == "code":
            return f'<div class="code"{idattr}>{code_html(n.get("value", ""), n.get("lang"))}</div>'
        if t in ("inlineMath", "math"):
            self.page.counts["math"] += 1
            if not n.get("html"):
                self.problem(f"a formula KaTeX did not typeset: {n.get('value', '')[:80]!r}")
                return f'<code class="math-error">{esc(n.get("value", ""))}</code>'
            return n["html"] if t == "inlineMath" else f'<div class="math-display"{idattr}>{n["html"]}</div>'
        if t == "link":
            url = n.get("url", "")
            ext = "" if url.startswith("/") or url.startswith("#") else ' rel="noopener"'
            dl = " download" if n.get("static") else ""
            return f'<a href="{esc(self.href(url))}"{ext}{dl}>{kids()}</a>'
        if t == "crossReference":
            url = n.get("url") or ""
            target = self.href(url) if url else f"#{n.get('html_id') or n.get('identifier', '')}"
            return f'<a class="xref" href="{esc(target)}">{kids() or esc(n.get("label", ""))}</a>'
        if t == "image":
            return self.image(n)
        if t == "list":
            tag = "ol" if n.get("ordered") else "ul"
            start = f' start="{int(n["start"])}"' if n.get("ordered") and n.get("start") not in (None, 1) else ""
            return f"<{tag}{start}>{kids()}</{tag}>"
        if t == "table":
            return f'<div class="table-wrap"><table{idattr}>{kids()}</table></div>'
        if t == "tableCell":
            tag = "th" if n.get("header") else "td"
            align = f' style="text-align:{esc(n["align"])}"' if n.get("align") else ""
            return f"<{tag}{align}>{kids()}</{tag}>"
        if t == "thematicBreak":
            return "<hr>"
        if t == "break":
            return "<br>"
        if t == "html":
            return n.get("value", "")
        if t == "comment":
            return f"<!-- {n.get('value', '').replace('--', '- -')} -->"
        if t == "admonition":
            kind = esc(n.get("kind") or "note")
            return f'<aside class="admonition {kind}"{idattr}>{kids()}</aside>'
        if t == "container":
            return f'<figure class="{esc(n.get("kind") or "figure")}"{idattr}>{kids()}</figure>'
        if t == "abbreviation":
            return f'<abbr title="{esc(n.get("title", ""))}">{kids()}</abbr>'
        if t == "footnoteReference":
            label = esc(n.get("enumerator") or n.get("label") or "*")
            return f'<sup class="footnote-ref"><a href="#fn-{esc(n.get("identifier", ""))}">{label}</a></sup>'
        if t == "footnoteDefinition":
            label = esc(n.get("enumerator") or n.get("label") or "*")
            return f'<div class="footnote" id="fn-{esc(n.get("identifier", ""))}"><sup>{label}</sup> {kids()}</div>'
        if t in ("mystTarget", "target"):
            return f'<span id="{esc(n.get("label", ""))}"></span>'
        if t in ("mystDirective", "mystRole"):  # MyST keeps these only when it could not interpret them
            self.problem(f"MyST could not interpret a {t} {n.get('name')!r}")
            return kids()
        if t == "inlineExpression":
            res = (n.get("result") or {}).get("data", {}).get("text/plain", {})
            return f"<code>{esc(res.get('content', ''))}</code>"
        if t == "outputs":
            return f'<div class="outputs">{kids()}</div>'
        if t == "output":
            return self.output(n)
        if t in ("cite", "citeGroup"):
            return f"<span class='cite'>{kids() or esc(n.get('label', ''))}</span>"
        self.problem(f"unknown node type {t!r}")
        return kids() or esc(n.get("value", ""))

    def image(self, n: dict) -> str:
        url = n.get("url") or ""
        src = n.get("urlSource") or ""
        if (not url or url == "/undefined") and src.startswith(("http://", "https://")):
            url = src  # a remote image that an offline build could not download: the reader's browser loads it
        self.page.counts["images"] += not url.startswith(("http://", "https://"))
        width = f' style="width:{esc(n["width"])}"' if n.get("width") else ""
        return f'<img src="{esc(self.href(url))}" alt="{esc(n.get("alt", ""))}"{width}>'

    # ---- notebook outputs ----
    def _payload(self, entry: dict) -> str:
        """The content of one mime entry: inline, or in a file MyST moved to public/."""
        if "content" in entry:
            return entry["content"]
        return (self.public / entry["path"].lstrip("/")).read_text(encoding="utf-8")

    def output(self, n: dict) -> str:
        jd = n.get("jupyter_data") or {}
        kind = jd.get("output_type")
        if kind == "stream":
            return f'<pre class="stream {esc(jd.get("name", "stdout"))}">{esc(ANSI.sub("", jd.get("text", "")))}</pre>'
        if kind == "error":
            tb = ANSI.sub("", "\n".join(jd.get("traceback") or [f"{jd.get('ename')}: {jd.get('evalue')}"]))
            return f'<pre class="error">{esc(tb)}</pre>'
        data = jd.get("data") or {}
        if PLOTLY in data:  # a plotly figure, or a widget's kernel-free fallback: plotly.js draws it in the browser
            self.page.counts["plotly"] += 1
            self.page.counts["widgets"] += WIDGET in data
            fig = self._payload(data[PLOTLY])
            if not isinstance(fig, str):
                fig = json.dumps(fig)
            k = len(self.page.plotly_json)
            self.page.plotly_json.append(fig)
            fig = fig.replace("</", "<\\/")  # JSON inside <script>: no "</script>" can end it early
            return (f'<div class="output plotly-output"><div class="plotly-figure" data-figure="plotly-{k}"></div>'
                    f'<script type="application/json" id="plotly-{k}">{fig}</script></div>')
        if WIDGET in data:
            self.page.counts["widgets"] += 1
            self.problem("a widget output without a kernel-free fallback (no plotly figure in its mime bundle)")
            return ('<div class="output widget-missing">This output is an interactive widget: it needs a running kernel. '
                    'Launch the notebook on Binder to use it.</div>')
        if "text/html" in data:
            return f'<div class="output html-output">{self._payload(data["text/html"])}</div>'
        for mime in ("image/svg+xml", "image/png", "image/jpeg", "image/gif", "image/webp"):
            if mime in data:
                self.page.counts["images"] += 1
                entry = data[mime]
                if "path" in entry:
                    src = self.href(entry["path"])
                else:  # small images stay inline
                    body = entry["content"]
                    src = f"data:{mime};base64,{body}" if mime != "image/svg+xml" else None
                    if src is None:
                        return f'<div class="output image-output">{body}</div>'
                alt = esc(data.get("text/plain", {}).get("content", "figure"))
                return f'<div class="output image-output"><img src="{esc(src)}" alt="{alt}"></div>'
        if "text/markdown" in data:
            return f'<pre class="output text-output">{esc(self._payload(data["text/markdown"]))}</pre>'
        if "text/plain" in data:
            return f'<pre class="output text-output">{esc(ANSI.sub("", self._payload(data["text/plain"])))}</pre>'
        self.problem(f"an output with no mime type this site can show: {sorted(data)}")
        return ""

    # ---- the page around the content ----
    def binder_url(self, location: str) -> str | None:
        if not self.binder_repo:
            return None
        nb = location.lstrip("/") if location.endswith(".ipynb") else "lectures/00_index.ipynb"
        return f"https://mybinder.org/v2/gh/{self.binder_repo}/HEAD?urlpath=lab/tree/{nb}"

    def render_page(self, page: Page, nav: list, order: list[Page], site_title: str) -> str:
        self.page = page
        d = page.data
        fm = d.get("frontmatter", {})
        body = self.node(d["mdast"])
        i = order.index(page)
        prev_, next_ = (order[i - 1] if i > 0 else None), (order[i + 1] if i + 1 < len(order) else None)
        actions = []
        location = d.get("location", "")
        binder = self.binder_url(location)
        if binder:
            label = "Launch this notebook on Binder" if location.endswith(".ipynb") else "Launch the course on Binder"
            actions.append(f'<a class="button binder" href="{esc(binder)}" rel="noopener">{label}</a>')
        for ex in fm.get("exports", []):
            if ex.get("format") == "ipynb" and ex.get("url"):
                actions.append(f'<a class="button download" href="{esc(self.href(ex["url"]))}" '
                               f'download="{esc(ex.get("filename", "notebook.ipynb"))}">Download the notebook '
                               f'({esc(ex.get("filename", ".ipynb"))})</a>')
        p = page.prefix
        navhtml = []
        for item in nav:
            if isinstance(item, str):
                navhtml.append(f'<li class="nav-section">{esc(item)}</li>')
            else:
                cur = ' class="current" aria-current="page"' if item is page else ""
                navhtml.append(f'<li><a href="{esc(p + item.url)}"{cur}>{esc(item.title)}</a></li>')
        pn = []
        if prev_:
            pn.append(f'<a class="prev" rel="prev" href="{esc(p + prev_.url)}"><span>Previous</span>{esc(prev_.title)}</a>')
        if next_:
            pn.append(f'<a class="next" rel="next" href="{esc(p + next_.url)}"><span>Next</span>{esc(next_.title)}</a>')
        plotly = f'<script src="{p}_static/plotly.min.js"></script>' if page.plotly_json else ""
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(page.title)} · {esc(site_title)}</title>
<link rel="stylesheet" href="{p}_static/katex/katex.min.css">
<link rel="stylesheet" href="{p}_static/site.css">
{plotly}
<script src="{p}_static/site.js" defer></script>
</head>
<body data-root="{p}" data-slug="{esc(page.slug)}">
<header class="topbar">
  <a class="brand" href="{p or './'}">{esc(site_title)}</a>
  <div class="search"><input type="search" id="search-input" placeholder="Search the course…" aria-label="Search the course" autocomplete="off">
  <ol id="search-results" hidden></ol></div>
</header>
<div class="layout">
<nav class="sidebar" aria-label="Course"><ul>{''.join(navhtml)}</ul></nav>
<main id="content">
<div class="page-actions">{''.join(actions)}</div>
<h1 class="title">{esc(page.title)}</h1>
{body}
<nav class="prev-next" aria-label="Previous and next page">{''.join(pn)}</nav>
</main>
</div>
</body>
</html>
"""


def binder_repo_from_readme(root: Path) -> str | None:
    """OWNER/REPO of README.md's Binder badge (the one place the repository is named); SITE_BINDER_REPO overrides."""
    if os.environ.get("SITE_BINDER_REPO"):
        return os.environ["SITE_BINDER_REPO"]
    readme = root / "README.md"
    m = BINDER_BADGE.search(readme.read_text(encoding="utf-8")) if readme.is_file() else None
    return m.group(1) if m else None


def copy_assets(out: Path, public: Path, site: Path) -> None:
    static = out / "_static"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copytree(public, out, dirs_exist_ok=True)  # images, notebooks, figures: named by hash, linked from pages
    katex = HERE / "node_modules" / "katex" / "dist"
    if not (katex / "katex.min.css").is_file():
        sys.exit(f"[render] {katex} is missing: run `npm ci` in {HERE} (site/build.py does)")
    (static / "katex").mkdir(exist_ok=True)
    shutil.copy2(katex / "katex.min.css", static / "katex" / "katex.min.css")
    shutil.copytree(katex / "fonts", static / "katex" / "fonts", dirs_exist_ok=True)
    spec = importlib.util.find_spec("plotly")
    plotly_js = Path(spec.origin).parent / "package_data" / "plotly.min.js" if spec and spec.origin else None
    if plotly_js is None or not plotly_js.is_file():
        sys.exit("[render] plotly.min.js not found: run the build with the course's Python (it has plotly)")
    shutil.copy2(plotly_js, static / "plotly.min.js")  # the same plotly that wrote the figures
    (static / "site.css").write_text((HERE / "static" / "site.css").read_text(encoding="utf-8") + "\n" + code_css(),
                                     encoding="utf-8")
    shutil.copy2(HERE / "static" / "site.js", static / "site.js")
    shutil.copy2(site / "myst.search.json", out / "search.json")
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve _static/ as it is


def main() -> int:
    out = Path(os.environ["BUILD_DIRECTORY"]).resolve()  # <project>/_build/html
    site = out.parent / "site"
    public = site / "public"
    root = out.parent.parent
    config = json.loads((site / "config.json").read_text(encoding="utf-8"))
    site_title = config.get("title") or config["projects"][0].get("title", "")
    r = Renderer(site, out, public, binder_repo_from_readme(root))
    order: list[Page] = []
    nav: list = []
    for proj in config["projects"]:
        entries = [{"slug": proj["index"], "title": None}] + proj["pages"]
        for e in entries:
            if "slug" not in e:  # a section heading of the table of contents
                nav.append(e["title"])
                continue
            data = json.loads((site / "content" / f"{e['slug']}.json").read_text(encoding="utf-8"))
            url = "" if e["slug"] == proj["index"] else e["slug"].replace(".", "/") + "/"
            title = e.get("title") or data.get("frontmatter", {}).get("title") or e["slug"]
            page = Page(e["slug"], url, title, data)
            order.append(page)
            nav.append(page)
    copy_assets(out, public, site)
    report = {"pages": [], "problems": []}
    for page in order:
        text = r.render_page(page, nav, order, site_title)
        dest = out / page.url / "index.html"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        report["pages"].append({"slug": page.slug, "url": page.url, "title": page.title,
                                "source": page.data.get("location", ""), **page.counts})
        report["problems"] += [f"{page.data.get('location', page.slug)}: {m}" for m in page.problems]
    (out / "site-build.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    for m in report["problems"]:
        print(f"[render] PROBLEM {m}", file=sys.stderr)
    print(f"[render] wrote {len(order)} pages to {out}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
