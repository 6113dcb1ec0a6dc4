/* cafleet admin: the messages list refreshes itself, like the session timeline. Every few
   seconds it fetches the same address (same filters, search and page) and swaps in the new
   results; it stops when the answer is not a messages list (e.g. the login expired), and
   waits while the tab is hidden. It also marks the list so the stylesheet can let the body
   column wrap. */
function cafleetMessagesList() {
  "use strict";
  var PERIOD_MS = 5000;
  var list = document.getElementById("changelist");
  if (!list || !document.body.classList.contains("model-task") ||
      !document.body.classList.contains("change-list")) {
    return;
  }
  list.classList.add("cafleet-messages");
  if (!window.fetch || !window.DOMParser) {
    return;
  }
  var form = document.getElementById("changelist-form");
  if (!form) {
    return;
  }
  var status = document.createElement("p");
  status.id = "cafleet-refresh-status";
  status.textContent = "Refreshes itself every " + PERIOD_MS / 1000 + " seconds.";
  form.parentNode.insertBefore(status, form);
  var busy = false;
  var timer = null;

  function stop(reason) {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
    status.textContent = reason;
  }

  function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    window.fetch(window.location.href, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var page = new window.DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("changelist-form");
        if (!fresh || !page.body.classList.contains("model-task")) {
          throw new Error("not a messages list");
        }
        form.innerHTML = fresh.innerHTML;
        status.textContent = "Refreshes itself; last update " +
          new Date().toLocaleTimeString() + ".";
      })
      .catch(function () {
        stop("Auto-refresh stopped; reload the page.");
      })
      .then(function () {
        busy = false;
      });
  }

  timer = window.setInterval(tick, PERIOD_MS);
}

// The admin loads this script in the page head: start once the list is there.
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", cafleetMessagesList);
} else {
  cafleetMessagesList();
}
