// Draws the report's plots as SVG from the JSON embedded in the page. No
// network, no library. Every drawn plot records how many data points it
// drew in a data-points attribute, and <body> gets data-rendered="true" once
// everything is drawn, so a headless browser test can check the result.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
  var data = JSON.parse(document.getElementById("report-data").textContent);

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, anchor) {
    var t = el("text", { x: x, y: y, "text-anchor": anchor || "middle" }, parent);
    t.textContent = s;
    return t;
  }
  function fmtUs(us) {
    if (us < 1000) return Math.round(us) + "µs";
    if (us < 1e6) return +(us / 1e3).toPrecision(3) + "ms";
    return +(us / 1e6).toPrecision(3) + "s";
  }
  function ninesLabel(n) {
    if (n === 0) return "0%";
    var p = 100 * (1 - Math.pow(10, -n));
    return +p.toFixed(n) + "%";
  }
  // logScale maps [lo, hi] (lo > 0) to [a, b] logarithmically.
  function logScale(lo, hi, a, b) {
    var l0 = Math.log10(lo), l1 = Math.log10(hi);
    if (l1 - l0 < 1e-9) { l0 -= 0.5; l1 += 0.5; }
    return function (v) { return a + (Math.log10(Math.max(v, lo)) - l0) / (l1 - l0) * (b - a); };
  }
  function logTicks(lo, hi) {
    var out = [];
    for (var e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      [1, 2, 5].forEach(function (m) {
        var v = m * Math.pow(10, e);
        if (v >= lo && v <= hi) out.push(v);
      });
    }
    return out;
  }
  function frame(svg, m, w, h) {
    el("rect", { x: m.l, y: m.t, width: w - m.l - m.r, height: h - m.t - m.b, fill: "#fbfcfd", stroke: "#c9ced8" }, svg);
  }
  function yAxis(svg, y, lo, hi, m, w) {
    logTicks(lo, hi).forEach(function (v) {
      var py = y(v);
      el("line", { x1: m.l, x2: w - m.r, y1: py, y2: py, stroke: "#e6e9ef" }, svg);
      text(svg, m.l - 6, py + 4, fmtUs(v), "end");
    });
  }
  function polyline(svg, pts, color, width, dash) {
    var a = { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": width || 2, "stroke-linejoin": "round" };
    if (dash) a["stroke-dasharray"] = dash;
    el("polyline", a, svg);
  }

  function drawDistribution() {
    var svg = document.getElementById("distribution");
    var legend = document.getElementById("distribution-legend");
    var W = +svg.getAttribute("width"), H = +svg.getAttribute("height");
    var m = { l: 64, r: 16, t: 12, b: 40 };
    var dists = (data.distributions || []).filter(function (d) { return d.points && d.points.length; });
    var prev = (data.previous_distributions || []).filter(function (d) { return d.points && d.points.length; });
    var maxN = 1, lo = Infinity, hi = 1, n = 0;
    dists.concat(prev).forEach(function (d) {
      d.points.forEach(function (p) {
        maxN = Math.max(maxN, p.nines);
        lo = Math.min(lo, Math.max(p.us, 1));
        hi = Math.max(hi, p.us);
      });
    });
    if (!isFinite(lo)) lo = 1;
    maxN = Math.ceil(maxN);
    frame(svg, m, W, H);
    var x = function (v) { return m.l + v / maxN * (W - m.l - m.r); };
    var y = logScale(lo, hi, H - m.b, m.t);
    yAxis(svg, y, lo, hi, m, W);
    for (var i = 0; i <= maxN; i++) {
      el("line", { x1: x(i), x2: x(i), y1: m.t, y2: H - m.b, stroke: "#e6e9ef" }, svg);
      text(svg, x(i), H - m.b + 16, ninesLabel(i), i === maxN ? "end" : (i === 0 ? "start" : "middle"));
    }
    text(svg, (W + m.l) / 2, H - 6, "percentile");
    var colorOf = {};
    dists.forEach(function (d, k) { colorOf[d.service] = COLORS[k % COLORS.length]; });
    prev.forEach(function (d) {
      if (!colorOf[d.service]) return;
      polyline(svg, d.points.map(function (p) { return x(p.nines).toFixed(1) + "," + y(Math.max(p.us, 1)).toFixed(1); }), colorOf[d.service], 1.2, "4 3");
    });
    dists.forEach(function (d) {
      var color = colorOf[d.service];
      polyline(svg, d.points.map(function (p) { n++; return x(p.nines).toFixed(1) + "," + y(Math.max(p.us, 1)).toFixed(1); }), color);
      var s = document.createElement("span");
      s.innerHTML = '<i style="background:' + color + '"></i>';
      s.appendChild(document.createTextNode(d.service));
      legend.appendChild(s);
    });
    if (prev.length) {
      var s = document.createElement("span");
      s.innerHTML = '<i style="background:repeating-linear-gradient(90deg,#555 0 4px,transparent 4px 7px)"></i>';
      s.appendChild(document.createTextNode("dashed: previous window"));
      legend.appendChild(s);
    }
    if (!dists.length) text(svg, W / 2, H / 2, "no traffic in the window");
    svg.setAttribute("data-points", n);
    svg.setAttribute("data-lines", dists.length);
  }

  function drawTimeline() {
    var box = document.getElementById("timeline");
    var series = (data.timeline || []).filter(function (s) { return s.points && s.points.length; });
    var t0 = Infinity, t1 = -Infinity, lo = Infinity, hi = 1;
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        var t = Date.parse(p.at);
        t0 = Math.min(t0, t); t1 = Math.max(t1, t);
        lo = Math.min(lo, Math.max(p.p50_us, 1)); hi = Math.max(hi, p.p99_9_us);
      });
    });
    if (!isFinite(lo)) lo = 1;
    var lines = [["p50_us", "p50", "#8fb5da", null], ["p99_us", "p99", "#1f77b4", null], ["p99_9_us", "p99.9", "#d62728", null]];
    series.forEach(function (s, k) {
      var div = document.createElement("div");
      div.className = "plot";
      var h3 = document.createElement("h3");
      var total = 0, errs = 0;
      s.points.forEach(function (p) { total += p.requests; errs += p.errors; });
      h3.textContent = s.service + " — " + total + " requests, " + (total ? (100 * errs / total).toFixed(2) : "0.00") + "% errors";
      div.appendChild(h3);
      var W = 470, H = 220, m = { l: 58, r: 10, t: 8, b: 30 };
      var svg = el("svg", { width: W, height: H, "class": "timeline", "data-service": s.service }, div);
      frame(svg, m, W, H);
      var span = Math.max(t1 - t0, 1);
      var x = function (t) { return t1 === t0 ? (W + m.l - m.r) / 2 : m.l + (t - t0) / span * (W - m.l - m.r); };
      var y = logScale(lo, hi, H - m.b, m.t);
      yAxis(svg, y, lo, hi, m, W);
      var ticks = Math.min(5, s.points.length);
      for (var i = 0; i < ticks; i++) {
        var t = ticks === 1 ? t0 : t0 + i * span / (ticks - 1);
        text(svg, x(t), H - m.b + 16, new Date(t).toISOString().substring(11, 19), ticks > 1 && i === ticks - 1 ? "end" : (ticks > 1 && i === 0 ? "start" : "middle"));
      }
      // The start of the current window: the previous window is to its left.
      var tFrom = Date.parse(data.from);
      if (tFrom > t0 && tFrom < t1) {
        el("line", { x1: x(tFrom), x2: x(tFrom), y1: m.t, y2: H - m.b, stroke: "#6b7280", "stroke-dasharray": "3 3" }, svg);
        text(svg, x(tFrom) + 4, m.t + 12, "window →", "start");
        text(svg, x(tFrom) - 4, m.t + 12, "← previous", "end");
      }
      var n = 0;
      lines.forEach(function (ln) {
        var pts = s.points.map(function (p) { n++; return x(Date.parse(p.at)).toFixed(1) + "," + y(Math.max(p[ln[0]], 1)).toFixed(1); });
        if (pts.length === 1) {
          var xy = pts[0].split(",");
          el("circle", { cx: xy[0], cy: xy[1], r: 3, fill: ln[2] }, svg);
        } else {
          polyline(svg, pts, ln[2], 1.8);
        }
      });
      svg.setAttribute("data-points", n);
      var lg = document.createElement("div");
      lg.className = "legend";
      lines.forEach(function (ln) {
        var sp = document.createElement("span");
        sp.innerHTML = '<i style="background:' + ln[2] + '"></i>' + ln[1];
        lg.appendChild(sp);
      });
      div.appendChild(lg);
      box.appendChild(div);
    });
    box.setAttribute("data-series", series.length);
  }

  drawDistribution();
  drawTimeline();
  document.body.setAttribute("data-rendered", "true");
})();
