// mailtls dashboard: reloads the page when the inventory changes (new sessions, annotations),
// unless the admin is typing in one of its forms. Served from the dashboard itself.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="mailtls-live-state"]');
  var known = meta ? meta.getAttribute("content") : null;
  var status = document.getElementById("live-status");
  function say(text) { if (status) { status.textContent = text; } }
  function poll() {
    fetch("/api/state", { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        var editing = document.activeElement && document.activeElement.form;
        if (body.state !== known && !editing) {
          window.location.reload();
          return;
        }
        say("Checked at " + new Date().toLocaleTimeString() + ".");
        window.setTimeout(poll, 2000);
      })
      .catch(function () {
        say("The dashboard is not answering; trying again.");
        window.setTimeout(poll, 5000);
      });
  }
  window.setTimeout(poll, 2000);
})();
