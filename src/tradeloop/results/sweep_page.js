// The sweep report's page logic (tradeloop.results.sweep_page): the heatmap of a metric over
// two parameters (others aggregated or fixed), the top runs, and equity curves on demand.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("sweep-data").textContent);
  const NONE = "(none)";
  const [BAD, MID, GOOD] = ["#dc2626", "#fef9c3", "#16a34a"];
  const LOWER_IS_BETTER = /duration|volatility|commission|turnover/;
  const PERCENT = /return|max_drawdown$|cagr|volatility|win_rate|exposure/;
  const $ = (id) => document.getElementById(id);
  const order = (a, b) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);
  const values = (name) => [...new Set(D.rows.map((r) => r[name]))].sort(order);
  const AGGREGATE = {
    mean: (v) => v.reduce((s, x) => s + x, 0) / v.length,
    max: (v) => Math.max(...v),
    min: (v) => Math.min(...v),
  };

  function options(select, names, chosen) {
    select.innerHTML = names
      .map((n) => `<option value="${n}"${n === chosen ? " selected" : ""}>${n}</option>`)
      .join("");
  }

  function format(metric, v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "n/a";
    if (PERCENT.test(metric)) return (100 * v).toFixed(2) + "%";
    if (metric === "n_trades") return String(Math.round(v));
    return Math.abs(v) >= 1000 ? v.toLocaleString("en-US", { maximumFractionDigits: 0 })
      : v.toFixed(2);
  }

  function state() {
    const fixed = {};
    document.querySelectorAll("#fixed select").forEach((s) => {
      fixed[s.dataset.param] = JSON.parse(s.value);
    });
    return { metric: $("metric").value, x: $("x").value, y: $("y").value,
             agg: $("agg").value, fixed };
  }

  // the rows behind one cell: x and y match, the other parameters match when fixed
  function cellRows(s, xv, yv) {
    return D.rows
      .map((row, i) => [row, i])
      .filter(([row]) => row[s.x] === xv && (s.y === NONE || row[s.y] === yv))
      .filter(([row]) => s.agg !== "fixed" ||
        Object.entries(s.fixed).every(([p, v]) => p === s.x || p === s.y || row[p] === v))
      .map(([, i]) => i);
  }

  function fixedControls(s) {
    const others = D.params.filter((p) => p !== s.x && p !== s.y);
    $("fixed").innerHTML = s.agg !== "fixed" ? "" : others.map((p) => {
      const chosen = p in s.fixed ? JSON.stringify(s.fixed[p]) : null;
      const opts = values(p).map((v) => {
        const text = JSON.stringify(v);
        const picked = text === chosen ? " selected" : "";
        return `<option value='${text}'${picked}>${v}</option>`;
      }).join("");
      return `<label>${p} = <select data-param="${p}">${opts}</select></label>`;
    }).join(" ");
    document.querySelectorAll("#fixed select").forEach((el) => el.addEventListener("change", draw));
  }

  let cells = [];
  function draw() {
    const s = state();
    const xs = values(s.x);
    const ys = s.y === NONE ? [null] : values(s.y);
    cells = ys.map((yv) => xs.map((xv) => cellRows(s, xv, yv)));
    const z = cells.map((row) => row.map((members) => {
      const v = members.map((i) => D.rows[i][s.metric]).filter((x) => x !== null);
      return v.length ? AGGREGATE[s.agg === "fixed" ? "mean" : s.agg](v) : null;
    }));
    const label = D.labels[s.metric] || s.metric;
    Plotly.react("heatmap", [{
      type: "heatmap", x: xs.map(String), y: ys.map((v) => (v === null ? "" : String(v))), z,
      text: z.map((row) => row.map((v) => format(s.metric, v))), texttemplate: "%{text}",
      colorscale: LOWER_IS_BETTER.test(s.metric) ? [[0, GOOD], [0.5, MID], [1, BAD]]
        : [[0, BAD], [0.5, MID], [1, GOOD]],
      hovertemplate: `${s.x}=%{x} ${s.y === NONE ? "" : s.y + "=%{y}"}: %{text}<extra></extra>`,
      colorbar: { title: { text: label }, thickness: 12, tickformat: PERCENT.test(s.metric) ? ".0%" : "" },
      xgap: 2, ygap: 2,
    }], {
      height: Math.max(320, 120 + 40 * ys.length), template: "plotly_white",
      xaxis: { title: { text: s.x }, type: "category" },
      yaxis: { title: { text: s.y === NONE ? "" : s.y }, type: "category" },
      margin: { l: 80, r: 24, t: 24, b: 56 },
    }, { displaylogo: false, responsive: true });
    top(s);
  }

  function top(s) {
    // best first (higher is better), n/a last, ties in table order
    const ranked = D.rows.map((row, i) => i)
      .sort((a, b) => {
        const va = D.rows[a][s.metric];
        const vb = D.rows[b][s.metric];
        if (va === null || vb === null) return (va === null) - (vb === null);
        return vb - va || a - b;
      })
      .slice(0, D.top);
    const shown = ["total_return", "sharpe", "max_drawdown", "n_trades"]
      .filter((m) => D.metrics.includes(m) && m !== s.metric);
    const head = [...D.params, s.metric, ...shown];
    $("top-title").textContent = `Top ${ranked.length} runs by ${D.labels[s.metric] || s.metric}`;
    $("top").innerHTML = `<tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>` +
      ranked.map((i) => `<tr data-row="${i}">` + head.map((h) => {
        const v = D.rows[i][h];
        return `<td>${D.params.includes(h) ? v : format(h, v)}</td>`;
      }).join("") + "</tr>").join("");
    document.querySelectorAll("#top tr[data-row]").forEach((tr) => tr.addEventListener("click",
      () => curves([Number(tr.dataset.row)])));
    if (ranked.length) curves([ranked[0]]);
  }

  function curves(indices) {
    document.querySelectorAll("#top tr[data-row]").forEach((tr) =>
      tr.classList.toggle("picked", indices.includes(Number(tr.dataset.row))));
    const traces = indices.filter((i) => D.curves[i]).map((i) => ({
      type: "scatter", mode: "lines", x: D.curves[i][0], y: D.curves[i][1],
      name: D.params.map((p) => `${p}=${D.rows[i][p]}`).join(" "), line: { width: 1.5 },
    }));
    $("curves-note").textContent = traces.length ? `${traces.length} run(s)` :
      "no equity curves in this sweep: run it with keep_equity=True (the CLI's --report does)";
    Plotly.react("curves", traces, {
      height: 360, template: "plotly_white", hovermode: "x unified",
      yaxis: { title: { text: "Equity" } }, margin: { l: 64, r: 24, t: 24, b: 40 },
      legend: { orientation: "h", y: 1.02, yanchor: "bottom" },
    }, { displaylogo: false, responsive: true });
    window.tradeloopSelected = indices;
  }

  if (!D.curves.some((c) => c)) $("curves-panel").style.display = "none";  // none were kept
  options($("metric"), D.metrics, D.metric);
  options($("x"), D.params, D.params[0]);
  options($("y"), [...D.params, NONE], D.params[1] || NONE);
  ["metric", "x", "y", "agg"].forEach((id) => $(id).addEventListener("change", () => {
    fixedControls(state());
    draw();
  }));
  fixedControls(state());
  draw();
  $("heatmap").on("plotly_click", (event) => {
    const p = event.points[0];
    curves(cells[p.pointIndex[0]][p.pointIndex[1]]);
  });
})();
