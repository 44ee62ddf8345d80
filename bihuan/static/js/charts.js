/* The charts of the dashboards and the directive page (Apache ECharts, vendored; no build step). Each chart is an
   element whose id is a key of CHARTS below; it is drawn from the JSON of the data element its entry names (both
   put there by the template) and marked data-ready="1". A page without the element or its data draws nothing.
   - control-and-care dashboard: people under each measure (bar), today's work (stacked bars), the units below
     (stacked bars: check-ins done / missing);
   - push-list dashboard: by outcome (pie), by measure (bar), by day (lines);
   - directive page: the time-to-coverage line. */
(function () {
  "use strict";
  function json(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }
  var CHARTS = {
    "chart-under": ["control-charts", function (d) {
      return {
        grid: { left: 8, right: 36, top: 8, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis" },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: d.under.labels, inverse: true },
        series: [{ name: d.names.under, type: "bar", data: d.under.values, color: "#b3261e",
                   label: { show: true, position: "right" } }]
      };
    }],
    "chart-today": ["control-charts", function (d) {
      return {
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
      };
    }],
    "chart-units": ["control-charts", function (d) {
      return {
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
      };
    }],
    "chart-outcomes": ["push-charts", function (d) {
      return {
        tooltip: { trigger: "item" },
        series: [{ name: d.names.outcomes, type: "pie", radius: ["35%", "65%"], data: d.outcomes,
                   label: { formatter: "{b}\n{c}" } }]
      };
    }],
    "chart-measures": ["push-charts", function (d) {
      return {
        grid: { left: 8, right: 24, top: 8, bottom: 24, containLabel: true },
        tooltip: { trigger: "axis" },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: d.measures.labels, inverse: true },
        series: [{ name: d.names.measures, type: "bar", data: d.measures.values, color: "#b3261e",
                   label: { show: true, position: "right" } }]
      };
    }],
    "chart-days": ["push-charts", function (d) {
      return {
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
      };
    }],
    "coverage-chart": ["coverage-data", function (data) {
      var labels = json("coverage-labels");
      return {
        grid: { left: 44, right: 16, top: 16, bottom: 36 },
        tooltip: { trigger: "axis", valueFormatter: function (v) { return v + "%"; } },
        xAxis: { type: "time", axisLabel: { hideOverlap: true } },
        yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
        series: [{
          name: labels.name, type: "line", step: "end", showSymbol: false, data: data,
          areaStyle: { opacity: 0.15 }, lineStyle: { width: 2 }, color: "#b3261e"
        }]
      };
    }]
    ,
    "chart-wall-coverage": ["wall-charts", function (d) {
      return {
        grid: { left: 8, right: 40, top: 8, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis" },
        xAxis: { type: "value", max: 100 },
        yAxis: { type: "category", data: d.coverage.labels, inverse: true },
        series: [{ name: d.names.coverage, type: "bar", data: d.coverage.values, color: "#1e8449",
                   label: { show: true, position: "right", formatter: "{c}%" } }]
      };
    }],
    "chart-wall-curve": ["wall-charts", function (d) {
      return {
        grid: { left: 8, right: 16, top: 30, bottom: 8, containLabel: true },
        legend: { top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: d.curve.labels },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: d.names.reached, type: "line", data: d.curve.reached, color: "#1e8449", smooth: true },
          { name: d.names.verified, type: "line", data: d.curve.verified, color: "#1a5fb4", smooth: true }
        ]
      };
    }]
  };
  function draw() {
    if (!window.echarts) { return; }
    var charts = [];
    var data = {};
    Object.keys(CHARTS).forEach(function (id) {
      var el = document.getElementById(id);
      var source = CHARTS[id][0];
      if (!el || !document.getElementById(source)) { return; }
      if (!(source in data)) { data[source] = json(source); }
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      var option = CHARTS[id][1](data[source]);
      option.animation = false;
      // tooltips drawn in the chart, not as HTML with inline styles (the CSP allows none)
      if (option.tooltip) { option.tooltip.renderMode = "richText"; }
      chart.setOption(option);
      charts.push(chart);
      el.setAttribute("data-ready", "1");
    });
    if (charts.length) {
      window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
