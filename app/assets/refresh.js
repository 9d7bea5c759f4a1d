/**
 * Served as /assets/refresh.<hash>.js (see app/Assets.ts).
 *
 * The browser side of the window protocol: refresh when the next value will be there (the
 * server's `nextValueAt`: the boundary for a page computed ahead, later by its run time
 * otherwise) plus the lag,
 * on the server's clock (offset measured on every response, erring late rather than early); swap `<main>` in place so neither
 * the page nor the scroll position jumps; retry once when the refresh lands on a stale value,
 * after `retryMs` or the value's last compute time, whichever is longer.
 * `window.__lockstep` exposes what happened, for people and for the end-to-end test.
 */
(function () {
  "use strict";
  function readMeta(doc) {
    var el = doc.getElementById("lockstep-meta");
    return el ? JSON.parse(el.textContent) : null;
  }
  var meta = readMeta(document);
  if (!meta) return;
  var state = { offset: meta.serverNow - Date.now(), timer: 0, refreshes: 0, errors: 0, retried: false, history: [], dueAt: 0 };
  window.__lockstep = state;
  function serverNow() { return Date.now() + state.offset; }
  function schedule(delay) {
    clearTimeout(state.timer);
    state.dueAt = serverNow() + Math.max(0, delay);
    state.timer = setTimeout(refresh, Math.max(0, delay));
  }
  // when the next value will be there: the boundary for a page computed ahead, later otherwise
  function scheduleNext() { schedule(Math.max(meta.nextBoundary, meta.nextValueAt || 0) + meta.lagMs - serverNow()); }
  function tick() {
    var el = document.getElementById("lockstep-countdown");
    if (el) el.textContent = "in " + Math.max(0, Math.ceil((state.dueAt - serverNow()) / 1000)) + " s";
  }
  function refresh() {
    var t0 = Date.now();
    var requestedAt = serverNow();
    fetch(location.pathname + location.search, { cache: "no-store", headers: { "Accept": "text/html", "X-Lockstep-Refresh": "1" } })
      .then(function (res) {
        var t1 = Date.now();
        var now = Number(res.headers.get("X-Server-Now"));
        // the server stamped X-Server-Now at some point before t1: taking t1 can only make the
        // offset too small, so the next refresh can come a round trip late but never early
        if (now > 0) state.offset = now - t1;
        return res.text().then(function (text) { return { res: res, text: text }; });
      })
      .then(function (r) {
        if (!r.res.ok) throw new Error("HTTP " + r.res.status);
        var doc = new DOMParser().parseFromString(r.text, "text/html");
        var next = readMeta(doc);
        var main = doc.querySelector("main");
        var current = document.querySelector("main");
        if (!next || !main || !current) throw new Error("unexpected page");
        var x = window.scrollX, y = window.scrollY;
        current.replaceWith(document.adoptNode(main));
        window.scrollTo(x, y);
        meta = next;
        var cache = r.res.headers.get("X-Cache");
        state.refreshes++;
        state.history.push({ cache: cache, bucket: next.bucket, computedAt: next.computedAt, requestedAt: requestedAt, status: r.res.status });
        if (cache === "stale" && !state.retried) {
          state.retried = true;
          schedule(Math.max(meta.retryMs, (meta.computeMs || 0) + 100));
          return;
        }
        state.retried = false;
        scheduleNext();
        tick();
      })
      .catch(function () {
        state.errors++;
        schedule(Math.max(meta.retryMs, 5000));
      });
  }
  scheduleNext();
  tick();
  setInterval(tick, 1000);
})();
