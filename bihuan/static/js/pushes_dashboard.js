/* The push-list dashboard: by outcome (pie), by measure (bar), by day (lines). Apache ECharts, vendored. */
(function () {
  "use strict";
  function draw() {
    var dataEl = document.getElementById("push-charts");
    if (!dataEl || !window.echarts) { return; }
    var d = JSON.parse(dataEl.textContent);
    var charts = [];
    function init(id) {
      var el = document.getElementById(id);
      if (!el) { return null; }
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      charts.push(chart);
      el.setAttribute("data-ready", "1");
      return chart;
    }
    var outcomes = init("chart-outcomes");
    if (outcomes) {
      outcomes.setOption({
        animation: false,
        tooltip: { trigger: "item" },
        series: [{ name: d.names.outcomes, type: "pie", radius: ["35%", "65%"], data: d.outcomes,
                   label: { formatter: "{b}\n{c}" } }]
      });
    }
    var measures = init("chart-measures");
    if (measures) {
      measures.setOption({
        animation: false,
        grid: { left: 8, right: 24, top: 8, bottom: 24, containLabel: true },
        tooltip: { trigger: "axis" },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: d.measures.labels, inverse: true },
        series: [{ name: d.names.measures, type: "bar", data: d.measures.values, color: "#b3261e",
                   label: { show: true, position: "right" } }]
      });
    }
    var days = init("chart-days");
    if (days) {
      days.setOption({
        animation: false,
        grid: { left: 40, right: 16, top: 30, bottom: 28 },
        legend: { top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: d.days.labels },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: d.names.pushed, type: "bar", data: d.days.pushed, color: "#9aa5b1" },
          { name: d.names.verified, type: "line", data: d.days.verified, color: "#1e8449" },
          { name: d.names.transferred, type: "line", data: d.days.transferred, color: "#b3261e" }
        ]
      });
    }
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
