// Draws each chart of the finance reports page from the figures the page embeds (#report-charts).
// Every chart also stands as a table in the page, so nothing here is the only way to read a figure.
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("report-charts").textContent);
  specs.forEach(function (spec) {
    var canvas = document.getElementById("chart-" + spec.id);
    if (!canvas || typeof Chart === "undefined") {
      return;
    }
    var chart = new Chart(canvas, {
      type: spec.type,
      data: {labels: spec.labels, datasets: spec.datasets},
      options: {
        // Drawn at once: printing and the browser test see the finished chart.
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: {stacked: !!spec.stacked},
          y: {stacked: !!spec.stacked, beginAtZero: true,
              ticks: spec.percent ? {callback: function (value) { return value + " %"; }} : {}}
        }
      }
    });
    canvas.dataset.rendered = String(chart.data.datasets.length);
  });
}());
