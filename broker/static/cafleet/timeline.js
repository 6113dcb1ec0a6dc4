/* cafleet admin: the session timeline refreshes itself. Every few seconds it fetches the
   events fragment of the same page and swaps it in (the loop is refresh.js, loaded first);
   the send form is left alone. It stops when the answer is not a timeline fragment (e.g.
   the login expired). */
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
  cafleetAutoRefresh({
    url: url,
    period: period,
    status: document.getElementById("cafleet-refresh-status"),
    accept: function (response) {
      return response.headers.get("X-Cafleet-Timeline") === "1";
    },
    swap: function (html) {
      box.innerHTML = html;
    }
  });
})();
