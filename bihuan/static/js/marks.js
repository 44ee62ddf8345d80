/* Offline-tolerant marks on the grid worker's page (no build step). A tap on "已通知" is sent at once; when the phone
   has no signal (or the request fails) the mark is kept in localStorage and sent when the connection returns.
   The server treats the same mark twice as one mark, so a mark sent twice does no harm. The number of unsent
   marks is shown in #unsent. Forms: form.mark-form with the fields directive, household, method and the CSRF
   token; the page works without this script too (a plain POST). */
(function () {
  "use strict";
  var KEY = "bihuan.unsentMarks";

  function load() {
    try { return JSON.parse(window.localStorage.getItem(KEY) || "[]"); } catch (e) { return []; }
  }
  function save(queue) { window.localStorage.setItem(KEY, JSON.stringify(queue)); show(queue); }
  function show(queue) {
    var el = document.getElementById("unsent");
    if (!el) { return; }
    queue = queue || load();
    el.hidden = queue.length === 0;
    el.textContent = queue.length ? queue.length + " " + (el.getAttribute("data-label") || "") : "";
  }
  function done(household, pending) {
    var box = document.getElementById("mark-" + household);
    if (!box) { return; }
    var span = document.createElement("span");
    span.className = pending ? "rs rs-pending-send" : "rs rs-reached";
    span.setAttribute("data-testid", (pending ? "queued-" : "marked-") + household);
    span.textContent = pending ? "已通知（待发送）" : "已通知";
    box.replaceChildren(span);
  }
  function send(item) {
    var body = new URLSearchParams();
    Object.keys(item.fields).forEach(function (k) { body.append(k, item.fields[k]); });
    return fetch(item.action, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": item.fields.csrfmiddlewaretoken }
    }).then(function (r) {
      if (r.status >= 500 || r.status === 0) { throw new Error("server " + r.status); }
      return r;  // a 4xx is final: keeping it would retry it forever
    });
  }
  var flushing = false;
  function flush() {
    var queue = load();
    if (flushing || !queue.length || !navigator.onLine) { show(queue); return; }
    flushing = true;
    var item = queue[0];
    send(item).then(function () {
      save(load().slice(1));
      done(item.fields.household, false);
      flushing = false;
      flush();
    }).catch(function () { flushing = false; show(); });
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("mark-form")) { return; }
    ev.preventDefault();
    ev.stopPropagation();
    var fields = {};
    new FormData(form).forEach(function (v, k) { fields[k] = v; });
    var item = { action: form.getAttribute("action"), fields: fields };
    var queue = function () {
      var q = load().filter(function (x) { return x.fields.household !== fields.household || x.fields.directive !== fields.directive; });
      q.push(item);
      save(q);
      done(fields.household, true);
    };
    if (!navigator.onLine) { queue(); return; }
    send(item).then(function () { done(fields.household, false); }).catch(queue);
  }, true);
  window.addEventListener("online", flush);
  document.addEventListener("DOMContentLoaded", function () { show(); flush(); });
  window.setInterval(flush, 15000);
})();
