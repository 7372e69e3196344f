/* Tells the server the viewer's time zone, so that the pages show times on the viewer's clock
   (dashboard.formatting reads the cookie, percent-encoded; it carries an IANA name such as "America/New_York"). */
(function () {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone) {
    document.cookie = "classpulse_time_zone=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
  }
})();
