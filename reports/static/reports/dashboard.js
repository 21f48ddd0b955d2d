// Draws each chart of the finance reports page from the figures the page embeds (#report-charts).
// Every chart also stands as a table in the page, so nothing here is the only way to read a figure.
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("report-charts").textContent);
  // Right to left in Arabic: the time axis runs from the right, the value axis stands on the right, and
  // legends and tooltips read right to left; numbers use the page's CLDR locale (ar-YE: Arabic-Indic digits).
  var rtl = document.documentElement.dir === "rtl";
  var page = document.querySelector(".finance-reports");
  var locale = (page && page.dataset.chartLocale) || document.documentElement.lang || "en";
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
        locale: locale,
        responsive: true,
        plugins: {legend: {rtl: rtl, textDirection: rtl ? "rtl" : "ltr"},
                  tooltip: {rtl: rtl, textDirection: rtl ? "rtl" : "ltr"}},
        maintainAspectRatio: false,
        scales: {
          x: {stacked: !!spec.stacked, reverse: rtl},
          y: {stacked: !!spec.stacked, beginAtZero: true, position: rtl ? "right" : "left",
              ticks: spec.percent ? {callback: function (value) { return value + " %"; }} : {}}
        }
      }
    });
    canvas.dataset.rendered = String(chart.data.datasets.length);
  });
}());
