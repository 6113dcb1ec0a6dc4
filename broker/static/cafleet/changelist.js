/* cafleet admin: the messages list refreshes itself, like the session timeline. Every few
   seconds it fetches the same address (same filters, search and page) and swaps in the new
   results (the loop is refresh.js, loaded first); it stops when the answer is not a messages
   list (e.g. the login expired), and waits while the tab is hidden. It also marks the list
   so the stylesheet can let the body column wrap. */
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
  cafleetAutoRefresh({
    url: window.location.href,
    period: PERIOD_MS,
    status: status,
    swap: function (html) {
      var page = new window.DOMParser().parseFromString(html, "text/html");
      var fresh = page.getElementById("changelist-form");
      if (!fresh || !page.body.classList.contains("model-task")) {
        throw new Error("not a messages list");
      }
      form.innerHTML = fresh.innerHTML;
    }
  });
}

// The admin loads this script in the page head: start once the list is there.
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", cafleetMessagesList);
} else {
  cafleetMessagesList();
}
