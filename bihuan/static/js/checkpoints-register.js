/* The checkpoint registration form: optional destinations from the register as people type (the form works
   without it). */
(function () {
  "use strict";
// Optional: destinations from the register as people type (the form works without it).
document.querySelectorAll('input[list=destinations][data-lookup]').forEach(function (input) {
  input.addEventListener('input', function () {
    var q = input.value.trim();
    if (q.length < 2) return;
    fetch(input.getAttribute('data-lookup') + '?q=' + encodeURIComponent(q)).then(function (r) { return r.json(); }).then(function (data) {
      var list = document.getElementById('destinations');
      list.innerHTML = '';
      data.results.forEach(function (u) { var o = document.createElement('option'); o.value = u.name; list.appendChild(o); });
    }).catch(function () {});
  });
});
})();
