/* cafleet admin: the session timeline refreshes itself. Every few seconds it fetches the
   events fragment of the same page and swaps it in; the send form is left alone. It stops
   when the answer is not a timeline fragment (e.g. the login expired). */
(function () {
  "use strict";
  var box = document.getElementById("cafleet-timeline");
  if (!box || !window.fetch) {
    return;
  }
  var period = parseInt(box.getAttribute("data-refresh-ms") || "0", 10);
  var url = box.getAttribute("data-refresh-url");
  if (!period || !url) {
    return;
  }
  var status = document.getElementById("cafleet-refresh-status");
  var busy = false;
  var timer = null;

  function stop(reason) {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
    if (status) {
      status.textContent = reason;
    }
  }

  function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    window.fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (!response.ok || response.headers.get("X-Cafleet-Timeline") !== "1") {
          throw new Error("not a timeline fragment");
        }
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        if (status) {
          status.textContent = "Refreshes itself; last update " + new Date().toLocaleTimeString() + ".";
        }
      })
      .catch(function () {
        stop("Auto-refresh stopped; reload the page.");
      })
      .then(function () {
        busy = false;
      });
  }

  timer = window.setInterval(tick, period);
})();
