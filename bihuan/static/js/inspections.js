/* The inspection pages' charts (Apache ECharts, vendored): open findings by severity and by unit (overview),
   the ranking's scores (ranking page). Each draws from the JSON element the template puts beside it. */
(function () {
  "use strict";
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function draw(id, option) {
    var el = document.getElementById(id);
    if (!el || !window.echarts) { return; }
    if (option.tooltip) { option.tooltip.renderMode = "richText"; }  // no HTML tooltip with inline styles (CSP)
    window.echarts.init(el).setOption(option);
    el.dataset.ready = "1";
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    var d = data("inspections-charts");
    if (d) {
      draw("chart-severity", {
        animation: false, grid: { left: 8, right: 36, top: 8, bottom: 8, containLabel: true }, tooltip: { trigger: "axis" },
        xAxis: { type: "value", minInterval: 1 }, yAxis: { type: "category", data: d.labels, inverse: true },
        series: [{ type: "bar", data: d.values, color: "#b3261e", label: { show: true, position: "right" } }]
      });
    }
    var r = data("inspections-ranking");
    if (r && r.names.length) {
      draw("chart-scores", {
        animation: false, grid: { left: 8, right: 36, top: 8, bottom: 8, containLabel: true }, tooltip: { trigger: "axis" },
        xAxis: { type: "value", min: 0, max: 100 }, yAxis: { type: "category", data: r.names, inverse: true },
        series: [{ type: "bar", data: r.scores, color: "#1e6091", label: { show: true, position: "right" } }]
      });
    }
  });
})();
