/* cafleet admin: the one self-refresh loop of the messages list (changelist.js) and the
   session timeline (timeline.js). Every `period` ms, unless a fetch is under way or the tab
   is hidden, it fetches `url` and hands the page's text to `swap`. It stops for good, and
   says so in `status`, when the answer fails, `accept(response)` refuses it or `swap` throws
   (e.g. the login expired and the answer is the login page). */
function cafleetAutoRefresh(options) {
  "use strict";
  var status = options.status;
  var busy = false;
  var timer = null;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function stop(reason) {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
    say(reason);
  }

  function tick() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    window.fetch(options.url, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) {
        if (!response.ok || (options.accept && !options.accept(response))) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        options.swap(html);
        say("Refreshes itself; last update " + new Date().toLocaleTimeString() + ".");
      })
      .catch(function () {
        stop("Auto-refresh stopped; reload the page.");
      })
      .then(function () {
        busy = false;
      });
  }

  timer = window.setInterval(tick, options.period);
}
