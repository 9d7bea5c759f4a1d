/**
 * Served as /assets/admin.<hash>.js (see app/Assets.ts).
 *
 * The cache inspector's admin buttons: each posts its action with the token typed into the
 * page (`Authorization: Bearer`, never a cookie: `credentials: "omit"`), shows the answer, and
 * swaps the key table for a fresh one. Without `ADMIN_TOKEN` the page has no buttons and this
 * script does nothing.
 */
(function () {
  "use strict";
  var admin = document.getElementById("admin");
  if (!admin || admin.getAttribute("data-enabled") !== "true") return;
  var result = document.getElementById("admin-result");
  var state = { actions: 0, failures: 0, last: null };
  window.__lockstepAdmin = state;
  function say(text, ok) {
    result.textContent = text;
    result.className = ok ? "ok" : "failed";
  }
  function reloadTable() {
    return fetch(location.pathname + location.search, { cache: "no-store", credentials: "omit" })
      .then(function (res) { return res.text(); })
      .then(function (text) {
        var next = new DOMParser().parseFromString(text, "text/html").getElementById("inspector-table");
        var current = document.getElementById("inspector-table");
        if (next && current) current.replaceWith(document.adoptNode(next));
      });
  }
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("button[data-action]") : null;
    if (!button) return;
    var action = button.getAttribute("data-action");
    var body = action === "invalidate-tag"
      ? { tag: button.getAttribute("data-tag") || document.getElementById("admin-tag").value }
      : { key: button.getAttribute("data-key") };
    say(action + " …", true);
    fetch("/api/cache/" + action, {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: { "Authorization": "Bearer " + document.getElementById("admin-token").value, "Content-Type": "application/json" },
      body: JSON.stringify(body)
    })
      .then(function (res) { return res.json().then(function (json) { return { status: res.status, ok: res.ok, json: json }; }); })
      .then(function (r) {
        state.last = { action: action, status: r.status, body: r.json };
        if (!r.ok) {
          state.failures++;
          say(r.status + ": " + (r.json && r.json.error ? r.json.error.message : "failed"), false);
          return;
        }
        state.actions++;
        say(r.json.message, true);
        return reloadTable();
      })
      .catch(function (e) {
        state.failures++;
        say("failed: " + e.message, false);
      });
  });
})();
