/* Gives the Sign-out form its CSRF token as it is sent. The layout holding the form is built once for every
   user, so the token (per sign-in) cannot be in it; the server sets it in the _csrf_token cookie
   (dashboard.auth.CSRF_COOKIE), the same one dash-renderer sends with every callback. */
(function () {
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.getAttribute("action") !== "/logout") {
      return;
    }
    const cookie = document.cookie.split("; ").find(function (part) {
      return part.startsWith("_csrf_token=");
    });
    form.querySelector("input[name=csrf_token]").value = cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
  });
})();
