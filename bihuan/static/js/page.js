/* What pages used to say in inline attributes, said once here (the Content-Security-Policy allows no inline script
   or style). Loaded by every staff page (base.html) and the printable pages; works on content HTMX swaps in.
   - data-width="42.5": an element's width in percent (progress bars);
   - data-pad="2.2em": a left padding (indented unit trees);
   - data-height="320": a height in pixels (charts sized by their rows);
   - data-autosubmit on an input or select: its form is sent when it changes;
   - data-print on a button: prints the page;
   - data-confirm="question" on a form: asks before sending it;
   - data-select-all on an input: clicking it selects its text (a link to copy). */
(function () {
  "use strict";
  var LENGTH = /^\d+(\.\d+)?(em|rem|px|%)$/;
  function size(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var all = [scope].concat(Array.prototype.slice.call(scope.querySelectorAll("[data-width],[data-pad],[data-height]")));
    all.forEach(function (el) {
      if (!el.getAttribute) return;
      var w = el.getAttribute("data-width"), p = el.getAttribute("data-pad"), h = el.getAttribute("data-height");
      if (w !== null && /^\d+(\.\d+)?$/.test(w)) el.style.width = Math.min(parseFloat(w), 100) + "%";
      if (p !== null && LENGTH.test(p)) el.style.paddingLeft = p;
      if (h !== null && /^\d+$/.test(h)) el.style.height = h + "px";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { size(document); });
  document.addEventListener("htmx:load", function (e) { size(e.detail && e.detail.elt); });
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el && el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) {
      if (el.form.requestSubmit) el.form.requestSubmit(); else el.form.submit();
    }
  });
  document.addEventListener("click", function (e) {
    var el = e.target && e.target.closest ? e.target.closest("[data-print],[data-select-all]") : null;
    if (!el) return;
    if (el.hasAttribute("data-print")) window.print();
    if (el.hasAttribute("data-select-all") && el.select) el.select();
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  }, true);
})();
