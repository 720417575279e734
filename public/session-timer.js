// Warns a logged-in customer before the idle timeout ends the session, then
// sends them to the login page when it has. An external file, because the
// Content-Security-Policy allows no inline script.
(function () {
  'use strict';
  var idleSeconds = Number(document.body.getAttribute('data-session-idle-seconds'));
  var warning = document.getElementById('session-warning');
  if (!idleSeconds || !warning) return;
  var leadSeconds = Math.min(120, idleSeconds / 2);
  window.setTimeout(
    function () {
      warning.hidden = false;
    },
    (idleSeconds - leadSeconds) * 1000,
  );
  window.setTimeout(function () {
    window.location.assign('/login?expired=1');
  }, idleSeconds * 1000);
})();
