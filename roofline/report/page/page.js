// The interactive roofline of report.html: reads the JSON in #data (built by roofline/report/page/build.py),
// draws one SVG per run (log-log axes, roofs, ridges, measured and predicted points), shows a point's
// numbers on hover or tap, and toggles kernels and providers. No library, no network.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("data").textContent);
  var single = data.runs.length === 1;  // one run: a wide chart; several: side by side
  var W = single ? 940 : 660, H = single ? 540 : 460, M = {l: 62, r: 16, t: 14, b: 44};
  var hidden = {kernel: {}, provider: {}};

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function log10(v) { return Math.log(v) / Math.LN10; }
  function si(v) {
    var p = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""], [1e-3, "m"]];
    for (var i = 0; i < p.length; i++) { if (v >= p[i][0]) { return +(v / p[i][0]).toPrecision(3) + p[i][1]; } }
    return v.toPrecision(2);
  }
  function marker(shape, x, y, r, attrs, parent) {
    var pts;
    if (shape === "circle") { attrs.cx = x; attrs.cy = y; attrs.r = r; return el("circle", attrs, parent); }
    if (shape === "square") { pts = [[-r, -r], [r, -r], [r, r], [-r, r]]; }
    else if (shape === "triangle") { pts = [[0, -1.2 * r], [1.1 * r, r], [-1.1 * r, r]]; }
    else if (shape === "down") { pts = [[0, 1.2 * r], [1.1 * r, -r], [-1.1 * r, -r]]; }
    else if (shape === "diamond") { pts = [[0, -1.3 * r], [1.3 * r, 0], [0, 1.3 * r], [-1.3 * r, 0]]; }
    else { var a = r * 0.45; pts = [[-a, -r], [a, -r], [a, -a], [r, -a], [r, a], [a, a], [a, r], [-a, r],
                                    [-a, a], [-r, a], [-r, -a], [-a, -a]]; }
    attrs.points = pts.map(function (p) { return (x + p[0]).toFixed(1) + "," + (y + p[1]).toFixed(1); }).join(" ");
    return el("polygon", attrs, parent);
  }

  function domain(run) {
    var xs = [], ys = [];
    run.points.forEach(function (p) { xs.push(p.x, p.px); ys.push(p.lo, p.hi, p.py); });
    run.roofs.forEach(function (r) {
      for (var c in r.peaks) { xs.push(r.peaks[c] / r.bandwidth); ys.push(r.peaks[c]); }
    });
    var x0 = Math.pow(10, Math.floor(log10(Math.min.apply(null, xs) / 2)));
    var x1 = Math.pow(10, Math.ceil(log10(Math.max.apply(null, xs) * 2)));
    var y1 = Math.pow(10, Math.ceil(log10(Math.max.apply(null, ys) * 2)));
    var y0 = Math.pow(10, Math.floor(log10(Math.min.apply(null, ys) / 2)));
    return [x0, x1, y0, y1];
  }

  function draw(run, legend, parent) {
    var d = domain(run), x0 = d[0], x1 = d[1], y0 = d[2], y1 = d[3];
    var sx = function (v) { return M.l + (log10(v) - log10(x0)) / (log10(x1) - log10(x0)) * (W - M.l - M.r); };
    var sy = function (v) { return H - M.b - (log10(v) - log10(y0)) / (log10(y1) - log10(y0)) * (H - M.t - M.b); };
    var svg = el("svg", {"class": "roofline", width: W, height: H, viewBox: "0 0 " + W + " " + H,
                         "data-run": run.key}, parent);
    var clip = el("clipPath", {id: "clip-" + run.key}, el("defs", {}, svg));
    el("rect", {x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b}, clip);
    var e, t;
    for (e = Math.round(log10(x0)); e <= Math.round(log10(x1)); e++) {
      var gx = sx(Math.pow(10, e));
      el("line", {"class": "grid", x1: gx, x2: gx, y1: M.t, y2: H - M.b}, svg);
      t = el("text", {x: gx, y: H - M.b + 15, "text-anchor": "middle"}, svg);
      t.textContent = si(Math.pow(10, e));
    }
    for (e = Math.round(log10(y0)); e <= Math.round(log10(y1)); e++) {
      var gy = sy(Math.pow(10, e));
      el("line", {"class": "grid", x1: M.l, x2: W - M.r, y1: gy, y2: gy}, svg);
      t = el("text", {x: M.l - 5, y: gy + 4, "text-anchor": "end"}, svg);
      t.textContent = si(Math.pow(10, e));
    }
    el("rect", {"class": "axis", x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: "none"}, svg);
    t = el("text", {x: (M.l + W - M.r) / 2, y: H - 8, "text-anchor": "middle"}, svg);
    t.textContent = "arithmetic intensity (FLOP/byte, log)";
    t = el("text", {x: 14, y: (M.t + H - M.b) / 2, "text-anchor": "middle",
                    transform: "rotate(-90 14 " + (M.t + H - M.b) / 2 + ")"}, svg);
    t.textContent = "FLOP/s (log)";
    var plot = el("g", {"clip-path": "url(#clip-" + run.key + ")"}, svg);
    run.roofs.forEach(function (r) {
      var g = el("g", {"class": "roofs " + r.kind, "data-roof": r.name}, plot);
      var top = 0;
      for (var c in r.peaks) { top = Math.max(top, r.peaks[c] / r.bandwidth); }
      el("line", {"class": "roof " + r.kind, "data-ceiling": "memory", x1: sx(x0), y1: sy(x0 * r.bandwidth),
                  x2: sx(top), y2: sy(top * r.bandwidth)}, g);
      for (var c0 in r.peaks) {
        var ridge0 = r.peaks[c0] / r.bandwidth;
        el("line", {"class": "roof " + r.kind, "data-ceiling": c0, x1: sx(ridge0), y1: sy(r.peaks[c0]), x2: sx(x1),
                    y2: sy(r.peaks[c0])}, g);
        el("polygon", {"class": "ridge " + r.kind, "data-ridge": ridge0,
                       points: [[0, -5], [5, 0], [0, 5], [-5, 0]].map(function (p) {
                         return (sx(ridge0) + p[0]) + "," + (sy(r.peaks[c0]) + p[1]); }).join(" ")}, g);
      }
      if (r !== run.roofs[0]) { return; }  // the roofs beside it are labelled in the caption below
      var lx0 = x0;
      var ly = sy(lx0 * r.bandwidth) - 5, angle = -Math.atan2(sy(x0) - sy(x0 * 10), sx(x0 * 10) - sx(x0));
      var lab = el("text", {x: sx(lx0) + 6, y: ly,
                            transform: "rotate(" + angle * 180 / Math.PI + " " + (sx(lx0) + 6) + " " + ly + ")"}, g);
      lab.textContent = "memory " + r.text.memory;
      for (var c in r.peaks) {
        var ridge = r.peaks[c] / r.bandwidth;
        lab = el("text", {x: sx(x1) - 4, y: sy(r.peaks[c]) - 5, "text-anchor": "end"}, g);
        lab.textContent = r.text[c] + ", ridge " + (+ridge.toPrecision(3)) + " FLOP/B";
      }
    });
    run.points.forEach(function (p, i) {
      var color = legend.kernels[p.kernel] || "#777";
      var g = el("g", {"class": "pt", "data-kernel": p.kernel, "data-provider": p.provider, "data-name": p.name,
                       "data-i": i}, plot);
      el("line", {"class": "link", x1: sx(p.x), y1: sy(p.y), x2: sx(p.px), y2: sy(p.py), stroke: color}, g);
      el("circle", {"class": "pred", cx: sx(p.px), cy: sy(p.py), r: 4, stroke: color}, g);
      el("line", {"class": "err", x1: sx(p.x), x2: sx(p.x), y1: sy(p.lo), y2: sy(p.hi), stroke: color}, g);
      if (p.above) { el("circle", {"class": "ring", cx: sx(p.x), cy: sy(p.y), r: 10}, g); }
      var m = marker(legend.providers[p.provider] || "circle", sx(p.x), sy(p.y), 5, {"class": "m", fill: color}, g);
      m.addEventListener("mouseenter", function (ev) { show(run, p, ev, false); });
      m.addEventListener("mouseleave", function () { if (!pinned) { hide(); } });
      m.addEventListener("click", function (ev) { ev.stopPropagation(); show(run, p, ev, true); g.classList.add("pinned"); });
    });
  }

  var tip = document.getElementById("tip"), pinned = null;
  function show(run, p, ev, pin) {
    if (pinned && pin) { pinned.classList.remove("pinned"); }
    var rows = p.tip.map(function (kv) {
      return "<tr><td><b>" + esc(kv[0]) + "</b></td><td>" + esc(kv[1]) + "</td></tr>";
    }).join("");
    tip.innerHTML = "<div><b>" + esc(p.name) + "</b> <span class='note'>" + esc(run.key) + "</span></div><table>" +
                    rows + "</table>";
    tip.hidden = false;
    var box = ev.target.getBoundingClientRect();
    var left = box.right + window.scrollX + 12, top = box.top + window.scrollY - 10;
    if (left + 430 > window.scrollX + document.documentElement.clientWidth) { left = box.left + window.scrollX - 440; }
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = top + "px";
    pinned = pin ? ev.target.parentNode : null;
  }
  function hide() {
    tip.hidden = true;
    if (pinned) { pinned.classList.remove("pinned"); pinned = null; }
  }
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  document.addEventListener("click", function () { if (pinned) { hide(); } });

  function apply() {
    document.querySelectorAll("[data-kernel][data-provider]").forEach(function (e) {
      var off = hidden.kernel[e.getAttribute("data-kernel")] || hidden.provider[e.getAttribute("data-provider")];
      e.style.display = off ? "none" : "";
    });
  }
  function checkbox(parent, kind, name, swatch) {
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.setAttribute("data-toggle-" + kind, name);
    box.addEventListener("change", function () {
      if (kind === "kernel" || kind === "provider") { hidden[kind][name] = !box.checked; apply(); }
      else { document.body.classList.toggle(kind, !box.checked); }
    });
    label.appendChild(box);
    if (swatch) { label.appendChild(swatch); }
    label.appendChild(document.createTextNode(name));
    parent.appendChild(label);
  }
  function fieldset(title) {
    var f = document.createElement("fieldset");
    var l = document.createElement("legend");
    l.textContent = title;
    f.appendChild(l);
    document.getElementById("controls").appendChild(f);
    return f;
  }
  var kernels = fieldset("kernels");
  Object.keys(data.legend.kernels).forEach(function (k) {
    var s = document.createElement("span");
    s.className = "swatch";
    s.style.background = data.legend.kernels[k];
    checkbox(kernels, "kernel", k, s);
  });
  var providers = fieldset("providers (marker)");
  Object.keys(data.legend.providers).forEach(function (p) {
    var s = el("svg", {width: 14, height: 14});
    marker(data.legend.providers[p], 7, 7, 4.5, {fill: "#555"}, s);
    checkbox(providers, "provider", p, s);
  });
  var show_ = fieldset("show");
  checkbox(show_, "hide-pred", "predicted points");
  if (data.runs.some(function (r) { return r.roofs.some(function (f) { return f.kind === "datasheet"; }); })) {
    checkbox(show_, "hide-sheet", "datasheet roofs");
  }
  var panels = document.getElementById("panels");
  data.runs.forEach(function (run) {
    var div = document.createElement("div");
    div.className = "panel";
    var h = document.createElement("h3");
    h.textContent = run.key + ": " + run.label;
    div.appendChild(h);
    panels.appendChild(div);
    draw(run, data.legend, div);
    var cap = document.createElement("p");
    cap.className = "note roofs";
    cap.style.maxWidth = W + "px";
    cap.textContent = run.roofs.map(function (r) {
      var parts = ["memory " + r.text.memory];
      for (var c in r.peaks) { parts.push(r.text[c] + " (ridge " + (+(r.peaks[c] / r.bandwidth).toPrecision(3)) + ")"); }
      return (r.kind === "datasheet" ? "dashed, " : "solid, ") + r.name + ": " + parts.join("; ");
    }).join(" | ");
    div.appendChild(cap);
  });
  if (!data.runs.length) { panels.textContent = "No run has a roof (no ceilings.json): nothing to draw."; }
}());
