/* cafleet admin: tell the server the viewer's time zone (the "tz" cookie read by
   broker.middleware.ViewerTimezoneMiddleware). Pages rendered after this one show times
   in that zone. No reload: this also runs on pages that answer a POST. */
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  // IANA names only ("Europe/Berlin", "Etc/GMT+2"): they need no cookie encoding, and the
  // server reads the value as it is.
  if (!zone || !/^[A-Za-z0-9_+\/-]+$/.test(zone)) {
    return;
  }
  var match = document.cookie.match(/(?:^|;\s*)tz=([^;]*)/);
  if (match && match[1] === zone) {
    return;
  }
  document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
})();
