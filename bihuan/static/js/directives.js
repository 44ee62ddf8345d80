/* Directive pages: the time-to-coverage chart (Apache ECharts, vendored). No build step. */
(function () {
  "use strict";
  function drawCoverage() {
    var el = document.getElementById("coverage-chart");
    var dataEl = document.getElementById("coverage-data");
    if (!el || !dataEl || !window.echarts) { return; }
    var data = JSON.parse(dataEl.textContent);
    var labels = JSON.parse(document.getElementById("coverage-labels").textContent);
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      grid: { left: 44, right: 16, top: 16, bottom: 36 },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v + "%"; } },
      xAxis: { type: "time", axisLabel: { hideOverlap: true } },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      series: [{
        name: labels.name, type: "line", step: "end", showSymbol: false, data: data,
        areaStyle: { opacity: 0.15 }, lineStyle: { width: 2 }, color: "#b3261e"
      }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    el.setAttribute("data-ready", "1");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawCoverage);
  } else {
    drawCoverage();
  }
})();
