// Draws the SLA dashboard's charts with Chart.js (served from static/vendor/chartjs).
// The figures come from the page itself (json_script "chart-data"): no extra request.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("chart-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var labels = data.labels;
    var ok = "#1f7a4d", brand = "#0b6bcb", muted = "#9fb3c8", bad = "#c53030";
    Chart.defaults.animation = false;  // figures, not a show; also keeps screenshots stable
    Chart.defaults.maintainAspectRatio = false;

    var weekly = document.getElementById("chart-weekly");
    if (weekly) {
      new Chart(weekly, {
        data: {
          labels: data.week_labels,
          datasets: [
            { type: "bar", label: labels.mqls, data: data.weekly.map(function (r) { return r.mqls; }), backgroundColor: muted, yAxisID: "y" },
            { type: "bar", label: labels.sqls, data: data.weekly.map(function (r) { return r.sqls; }), backgroundColor: brand, yAxisID: "y" },
            // clip: false and the padding on top: a week at 100 % sits on the top edge of the
            // percent axis, and its point would otherwise be cut in half there.
            { type: "line", label: labels.first_contact, data: data.weekly.map(function (r) { return r.first_contact_sla_percent; }), borderColor: ok, backgroundColor: ok, yAxisID: "pct", spanGaps: true, clip: false }
          ]
        },
        options: {
          layout: { padding: { top: 8 } },
          scales: { y: { beginAtZero: true, position: "left" }, pct: { min: 0, max: 100, position: "right", grid: { drawOnChartArea: false } } }
        }
      });
    }
    var rejections = document.getElementById("chart-rejections");
    if (rejections && data.rejections.length) {
      var palette = [bad, "#dd6b20", "#d69e2e", brand, "#805ad5", "#319795", muted, "#718096", "#2f855a"];
      new Chart(rejections, {
        type: "doughnut",
        data: {
          labels: data.rejections.map(function (r) { return r.reason; }),
          datasets: [{ label: labels.rejections, data: data.rejections.map(function (r) { return r.count; }), backgroundColor: palette }]
        },
        // At phone width a legend on the right would squeeze the doughnut to a dot.
        options: { plugins: { legend: { position: window.innerWidth < 600 ? "bottom" : "right" } } }
      });
    }
    var months = document.getElementById("chart-months");
    if (months && data.months.length) {
      new Chart(months, {
        data: {
          labels: data.month_labels,
          datasets: [
            { type: "bar", label: labels.mqls, data: data.months.map(function (r) { return r.mqls; }), backgroundColor: data.months.map(function (r) { return r.status === "in" ? ok : bad; }) },
            { type: "line", label: labels.target, data: data.months.map(function (r) { return r.target; }), borderColor: "#102a43", borderDash: [6, 4], pointRadius: 0 }
          ]
        },
        options: { scales: { y: { beginAtZero: true } } }
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
