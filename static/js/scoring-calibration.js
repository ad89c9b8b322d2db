// Draws the threshold explorer's curves with Chart.js (static/vendor/chartjs). The figures
// come from the explorer panel itself (json_script "explorer-data"); when htmx swaps in a
// new panel (other thresholds, the other model) the curves are drawn again from it.
(function () {
  "use strict";
  var brand = "#0b6bcb", ok = "#1f7a4d", muted = "#9fb3c8";

  function curve(canvas, series, labels, axisLabel, chosen) {
    var old = Chart.getChart(canvas);
    if (old) old.destroy();
    new Chart(canvas, {
      data: {
        labels: series.thresholds,
        datasets: [
          { type: "bar", label: labels.mqls, data: series.mqls, backgroundColor: series.thresholds.map(function (t) { return t === chosen ? brand : muted; }), yAxisID: "y" },
          { type: "line", label: labels.precision, data: series.precision, borderColor: ok, backgroundColor: ok, yAxisID: "pct", spanGaps: true, clip: false },
          { type: "line", label: labels.recall, data: series.recall, borderColor: "#c05621", backgroundColor: "#c05621", yAxisID: "pct", spanGaps: true, clip: false }
        ]
      },
      options: {
        layout: { padding: { top: 8 } },
        scales: {
          x: { title: { display: true, text: axisLabel } },
          y: { beginAtZero: true, position: "left" },
          pct: { min: 0, max: 100, position: "right", grid: { drawOnChartArea: false } }
        }
      }
    });
  }

  function draw() {
    var source = document.getElementById("explorer-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    Chart.defaults.animation = false;  // figures, not a show; also keeps screenshots stable
    Chart.defaults.maintainAspectRatio = false;
    var byEngagement = document.querySelector("#threshold-explorer canvas[data-chart=over-engagement]");
    if (byEngagement) curve(byEngagement, data.over_engagement, data.labels, data.labels.engagement, data.chosen.engagement);
    var byFit = document.querySelector("#threshold-explorer canvas[data-chart=over-fit]");
    if (byFit) curve(byFit, data.over_fit, data.labels, data.labels.fit, data.chosen.fit);
    var panel = document.getElementById("threshold-explorer");
    if (panel) panel.setAttribute("data-drawn", "true");
  }

  // A refused explorer request (400: not a whole number, out of range, another model)
  // is shown as the form's error, with the values as typed, instead of htmx's silence;
  // the curves and tables of the last good thresholds stay.
  function showError(xhr) {
    var panel = document.getElementById("threshold-explorer");
    var line = document.getElementById("explorer-error");
    if (!panel || !line) return;
    line.textContent = (xhr.responseText || String(xhr.status)).replace(/^[a-z_]+: /, "");
    line.hidden = false;
    var field = xhr.getResponseHeader("X-Error-Field");
    panel.querySelectorAll("form [name]").forEach(function (input) {
      if (input.name === field) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    });
  }

  // htmx "settles" a swapped element's class and style from the old element of the same
  // id with setAttribute; a style attribute set that way is an inline style the CSP
  // refuses (the explorer's inputs keep their ids for their labels). Nothing here is
  // styled inline, so settle the class only.
  if (window.htmx) window.htmx.config.attributesToSettle = ["class"];

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var panel = document.getElementById("threshold-explorer");
    if (!panel || !panel.contains(event.detail.elt) || xhr.status !== 400) return;
    event.detail.shouldSwap = false;
    event.detail.isError = false;  // answered, not failed: no htmx error on the console
    showError(xhr);
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "threshold-explorer") draw();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
