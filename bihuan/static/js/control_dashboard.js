/* The control-and-care dashboard: people under each measure (bar), today's work (stacked bars), the units below
   (stacked bars: check-ins done / missing). Apache ECharts, vendored. */
(function () {
  "use strict";
  function draw() {
    var dataEl = document.getElementById("control-charts");
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
    var under = init("chart-under");
    if (under) {
      under.setOption({
        animation: false,
        grid: { left: 8, right: 36, top: 8, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis" },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: d.under.labels, inverse: true },
        series: [{ name: d.names.under, type: "bar", data: d.under.values, color: "#b3261e",
                   label: { show: true, position: "right" } }]
      });
    }
    var today = init("chart-today");
    if (today) {
      today.setOption({
        animation: false,
        grid: { left: 8, right: 16, top: 30, bottom: 8, containLabel: true },
        legend: { top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: d.today.labels, inverse: true },
        series: [
          { name: d.names.done, type: "bar", stack: "t", data: d.today.done, color: "#1e8449" },
          { name: d.names.alert, type: "bar", stack: "t", data: d.today.alert, color: "#c0392b" },
          { name: d.names.waiting, type: "bar", stack: "t", data: d.today.waiting, color: "#c5ccd3" }
        ]
      });
    }
    var units = init("chart-units");
    if (units) {
      units.setOption({
        animation: false,
        grid: { left: 8, right: 16, top: 30, bottom: 8, containLabel: true },
        legend: { top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: d.units.labels, inverse: true,
                 axisLabel: { width: 96, overflow: "truncate" } },
        series: [
          { name: d.names.checked, type: "bar", stack: "c", data: d.units.done, color: "#1e8449" },
          { name: d.names.missing, type: "bar", stack: "c", data: d.units.missing, color: "#f39c12" }
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
