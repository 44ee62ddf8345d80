/* The checkpoint registration page, enhanced when script runs (the form works without it):
   - where from: as a place is typed (province, city, district), the risk areas of the policy version in force
     that match it are shown under the field (from the page's own list, <datalist id="origins">, no request);
   - destination: units of the register suggested as people type (checkpoints:destinations). */
(function () {
  'use strict';
  var origins = document.getElementById('origins');
  var areas = [];
  if (origins) {
    origins.querySelectorAll('option[data-risk]').forEach(function (o) {
      areas.push({ name: o.value, level: o.getAttribute('data-risk') });
    });
  }
  // "上海浦东", "上海市 浦东新区" and "上海市浦东新区" compare equal: spaces and the level words are dropped
  function bare(text) {
    return text.replace(/\s+/g, '').replace(/特别行政区|自治区|自治州|自治县|新区|地区|省|市|区|县|旗|盟/g, '');
  }
  areas.forEach(function (a) { a.bare = bare(a.name); });
  function matches(typed) {
    var q = bare(typed);
    if (q.length < 2) return [];
    return areas.filter(function (a) {
      return a.bare.length > 0 && (a.bare.indexOf(q) >= 0 || q.indexOf(a.bare) >= 0);
    }).slice(0, 5);
  }
  document.querySelectorAll('input[data-risk-hint]').forEach(function (input) {
    var hint = document.getElementById(input.getAttribute('data-risk-hint'));
    if (!hint) return;
    function show() {
      var found = matches(input.value);
      hint.textContent = found.map(function (a) { return a.level + '：' + a.name; }).join('；');
    }
    input.addEventListener('input', show);
    show();
  });
  var list = document.getElementById('destinations');
  if (!list) return;
  var url = list.getAttribute('data-url');
  document.querySelectorAll('input[list=destinations]').forEach(function (input) {
    input.addEventListener('input', function () {
      var q = input.value.trim();
      if (q.length < 2 || !url) return;
      fetch(url + '?q=' + encodeURIComponent(q), { credentials: 'same-origin' })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          list.innerHTML = '';
          data.results.forEach(function (u) {
            var o = document.createElement('option');
            o.value = u.name;
            list.appendChild(o);
          });
        }).catch(function () {});
    });
  });
})();
