// The course website's two scripts: draw the plotly figures (plotly.js is served with the site), and search.
(function () {
  "use strict";
  const root = document.body.dataset.root || "";

  // ---- plotly figures, widget fallbacks included: the figure's JSON sits next to its <div> ----
  function drawFigures() {
    if (!window.Plotly) return;
    document.querySelectorAll(".plotly-figure[data-figure]").forEach((div) => {
      const fig = JSON.parse(document.getElementById(div.dataset.figure).textContent);
      const config = Object.assign({ responsive: true, displaylogo: false }, fig.config || {});
      window.Plotly.newPlot(div, fig.data, fig.layout || {}, config).then(() => {
        if (fig.frames && fig.frames.length) return window.Plotly.addFrames(div, fig.frames);
      }).then(() => { div.dataset.ready = "true"; });
    });
  }

  // ---- search over MyST's index (search.json: one record per section heading and per paragraph run) ----
  let records = null;
  function load() {
    if (records) return Promise.resolve(records);
    return fetch(root + "search.json").then((r) => r.json()).then((d) => (records = d.records || []));
  }
  function pageUrl(url) { // "/slug#anchor" -> a link relative to this page
    const [path, frag] = url.replace(/^\//, "").split("#");
    return root + (path ? path.replace(/\/?$/, "/") : "") + (frag ? "#" + frag : "");
  }
  function title(h) { return [h.lvl1, h.lvl2, h.lvl3].filter(Boolean).join(" › "); }
  function search(q) {
    const words = q.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    const seen = new Set(), hits = [];
    for (const r of records) {
      const head = title(r.hierarchy || {});
      const text = (head + " " + (r.content || "")).toLowerCase();
      if (!words.every((w) => text.includes(w))) continue;
      const key = r.url;
      if (seen.has(key)) continue;
      seen.add(key);
      const score = words.reduce((s, w) => s + (head.toLowerCase().includes(w) ? 3 : 1), 0);
      hits.push({ r, head, score });
    }
    return hits.sort((a, b) => b.score - a.score).slice(0, 25);
  }
  function snippet(content, words) {
    if (!content) return "";
    const low = content.toLowerCase();
    const at = Math.max(0, Math.min(...words.map((w) => { const i = low.indexOf(w); return i < 0 ? Infinity : i; })) - 40);
    return (at > 0 ? "…" : "") + content.slice(at, at + 120).replace(/\s+/g, " ") + "…";
  }
  function setupSearch() {
    const input = document.getElementById("search-input"), list = document.getElementById("search-results");
    if (!input || !list) return;
    const show = () => load().then(() => {
      const q = input.value.trim(), words = q.toLowerCase().split(/\s+/).filter(Boolean);
      list.innerHTML = "";
      if (!q) { list.hidden = true; return; }
      const hits = search(q);
      if (!hits.length) {
        const li = document.createElement("li"); li.className = "none"; li.textContent = "No match for “" + q + "”";
        list.appendChild(li);
      }
      for (const { r, head } of hits) {
        const li = document.createElement("li"), a = document.createElement("a"), where = document.createElement("span");
        a.href = pageUrl(r.url);
        a.textContent = snippet(r.content, words) || head;
        where.className = "where"; where.textContent = head;
        a.prepend(where); li.appendChild(a); list.appendChild(li);
      }
      list.hidden = false;
    });
    input.addEventListener("input", show);
    input.addEventListener("focus", () => { load(); if (input.value) show(); });
    input.addEventListener("keydown", (e) => { if (e.key === "Escape") { input.value = ""; list.hidden = true; } });
    document.addEventListener("click", (e) => { if (!e.target.closest(".search")) list.hidden = true; });
  }

  drawFigures();
  setupSearch();
})();
