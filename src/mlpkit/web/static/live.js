// The live page: follow one run through GET /api/runs/NAME/events (server-sent events fed by
// the run folder) and redraw its loss and accuracy curves, step, time left and early stopping.
"use strict";

(function () {
  const name = document.getElementById("run-name").dataset.name;
  const SVG = "http://www.w3.org/2000/svg";
  const W = 600;
  const H = 300;
  const M = { left: 56, right: 12, top: 12, bottom: 36 };
  const COLORS = { train: "#1f77b4", val: "#d62728" };

  function el(tag, attrs, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function finitePairs(xs, ys) {
    const out = [];
    (xs || []).forEach((x, i) => {
      const y = (ys || [])[i];
      if (typeof x === "number" && typeof y === "number" && isFinite(y)) out.push([x, y]);
    });
    return out;
  }

  // series: [{name, points: [[x, y]...], color}]
  function chart(svg, series, yLabel) {
    svg.replaceChildren();
    const all = series.flatMap((s) => s.points);
    svg.dataset.points = String(all.length);
    if (!all.length) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, svg).textContent = "no points yet";
      return;
    }
    const xMax = Math.max(1, ...all.map((p) => p[0]));
    let yMin = Math.min(...all.map((p) => p[1]));
    let yMax = Math.max(...all.map((p) => p[1]));
    if (yMax - yMin < 1e-9) {
      yMin -= 0.5;
      yMax += 0.5;
    }
    const sx = (x) => M.left + (x / xMax) * (W - M.left - M.right);
    const sy = (y) => H - M.bottom - ((y - yMin) / (yMax - yMin)) * (H - M.top - M.bottom);
    el("line", { x1: M.left, y1: H - M.bottom, x2: W - M.right, y2: H - M.bottom, class: "axis" }, svg);
    el("line", { x1: M.left, y1: M.top, x2: M.left, y2: H - M.bottom, class: "axis" }, svg);
    for (let k = 0; k <= 4; k++) {
      const y = yMin + ((yMax - yMin) * k) / 4;
      el("text", { x: M.left - 6, y: sy(y) + 4, "text-anchor": "end", class: "tick" }, svg).textContent =
        y.toPrecision(3);
      const x = (xMax * k) / 4;
      const anchor = k === 4 ? "end" : "middle"; // the last step's label ends at the axis, not past the box
      el("text", { x: sx(x), y: H - M.bottom + 16, "text-anchor": anchor, class: "tick" }, svg).textContent =
        String(Math.round(x));
    }
    el("text", { x: W / 2, y: H - 4, "text-anchor": "middle", class: "axis-label" }, svg).textContent = "step";
    el("text", { x: M.left + 8, y: M.top + 12, class: "axis-label" }, svg).textContent = yLabel;
    // the legend goes in the right-hand corner the curves leave free: rising curves (accuracy)
    // end near the top, so their legend sits at the bottom, and falling ones (loss) the reverse
    const ends = series.filter((s) => s.points.length).map((s) => s.points[s.points.length - 1][1]);
    const endsHigh = ends.reduce((a, y) => a + (y - yMin) / (yMax - yMin), 0) / ends.length > 0.5;
    const legendY = (i) => (endsHigh ? H - M.bottom - 8 - 16 * (series.length - 1 - i) : M.top + 14 + 16 * i);
    series.forEach((s, i) => {
      if (!s.points.length) return;
      const d = s.points.map((p) => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" ");
      el("polyline", { points: d, fill: "none", stroke: s.color, "stroke-width": 2, class: "series" }, svg);
      el("text", { x: W - M.right - 4, y: legendY(i), "text-anchor": "end", fill: s.color, class: "legend" },
        svg).textContent = s.name;
    });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.round(seconds));
    const m = Math.floor(s / 60);
    return m ? m + " min " + (s % 60) + " s" : s + " s";
  }

  function update(state) {
    document.getElementById("status").textContent = state.status;
    const step = state.step === null || state.step === undefined ? "–" : String(state.step);
    document.getElementById("step").textContent =
      state.total_steps ? step + " of " + state.total_steps : step;
    document.getElementById("eta").textContent = state.status === "running" ? duration(state.eta_s) : "–";
    const es = state.early_stopping;
    let early = "off";
    if (es && es.stopped_step !== null && es.stopped_step !== undefined) early = "stopped at step " + es.stopped_step;
    else if (es && es.patience) {
      early = es.wait + " of " + es.patience + " checks without improvement";
      if (es.best_step !== null && es.best_step !== undefined) early += " (best at step " + es.best_step + ")";
    }
    document.getElementById("early").textContent = early;
    const val = state.validation || {};
    const train = state.train || {};
    chart(document.getElementById("loss-chart"), [
      { name: "training loss", points: finitePairs(train.step, train.loss), color: COLORS.train },
      { name: "validation loss", points: finitePairs(val.step, val.val_loss), color: COLORS.val },
    ], "loss");
    chart(document.getElementById("acc-chart"), [
      { name: "training accuracy", points: finitePairs(val.step, val.train_accuracy), color: COLORS.train },
      { name: "validation accuracy", points: finitePairs(val.step, val.val_accuracy), color: COLORS.val },
    ], "accuracy");
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }

  const source = new EventSource("/api/runs/" + encodeURIComponent(name) + "/events");
  source.addEventListener("progress", (event) => update(JSON.parse(event.data)));
  source.addEventListener("end", () => {
    source.close();
    document.body.dataset.ended = "1";
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) document.getElementById("status").textContent = "disconnected";
  });
})();
