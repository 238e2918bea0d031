// The stats page works without this: it adds a confirm() before admin
// actions and refreshes the page in place, keeping the scroll position, the
// closed sections and any selection.
(function () {
  "use strict";
  var body = document.body;
  var refresh = parseInt(body.getAttribute("data-refresh"), 10) || 0;

  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (!f.classList.contains("admin")) { return; }
    // The reals of a VIP, or the servers of an L7 backend.
    var l7 = !f.elements.vip, item = l7 ? "server" : "real";
    var group = l7 ? "L7 backend " + f.elements.backend.value : "VIP " + f.elements.vip.value;
    var items = Array.prototype.map.call(f.querySelectorAll("input[name=" + item + "]:checked"), function (x) { return x.value; });
    if (items.length === 0) { e.preventDefault(); alert("Select at least one " + item + " first."); return; }
    var sel = f.elements.action;
    var what = sel.options[sel.selectedIndex].text;
    if (sel.value === "weight") { what += " to " + f.elements.weight.value; }
    if (!confirm(what + " for " + items.join(", ") + " of " + group + "?")) { e.preventDefault(); return; }
    f.elements.confirmed.value = "1";
  });

  if (refresh <= 0) { return; }
  var live = document.getElementById("live"), auto = document.getElementById("auto"), updated = document.getElementById("updated");
  if (live) { live.hidden = false; }
  function busy() {
    if (auto && !auto.checked) { return true; }
    if (document.querySelector("main input[name=real]:checked, main input[name=server]:checked")) { return true; }
    var a = document.activeElement;
    return a && a.closest && a.closest("main form") !== null;
  }
  function tick() {
    if (busy()) { return; }
    fetch(body.getAttribute("data-uri"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status + " " + r.statusText); } return r.text(); })
      .then(function (text) {
        if (busy()) { return; }
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.querySelector("main");
        if (!fresh) { return; }
        var closed = Array.prototype.map.call(document.querySelectorAll("main details:not([open])"), function (d) { return d.id; });
        var notice = document.querySelector("main .notice");
        if (notice) { fresh.prepend(notice); } // the last action's result stays
        document.querySelector("main").replaceWith(document.adoptNode(fresh));
        closed.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = false; } });
        if (updated) { updated.textContent = "updated " + new Date().toLocaleTimeString(); updated.className = ""; }
      })
      .catch(function (err) { if (updated) { updated.textContent = "refresh failed: " + err.message; updated.className = "error"; } });
  }
  setInterval(tick, refresh * 1000);
})();
