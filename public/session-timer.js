// Warns a logged-in customer before the idle timeout ends the session, counts
// down the time left, and lets them stay logged in without leaving the page;
// when the time is up it sends them to the login page. An external file,
// because the Content-Security-Policy allows no inline script. Without
// scripts the session still ends on the server; only the warning is missing.
(function () {
  'use strict';
  var idleSeconds = Number(document.body.getAttribute('data-session-idle-seconds'));
  var warning = document.getElementById('session-warning');
  var countdown = document.getElementById('session-countdown');
  var stay = document.getElementById('session-stay');
  var status = document.getElementById('session-status');
  if (!idleSeconds || !warning || !countdown || !stay || !status) return;
  var leadSeconds = Math.min(120, idleSeconds / 2);
  var deadline = 0;
  var warnTimer = 0;
  var tickTimer = 0;
  var returnFocusTo = null;

  function mmss(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  function tick() {
    var left = (deadline - Date.now()) / 1000;
    countdown.textContent = mmss(left);
    if (left <= 0) {
      window.clearInterval(tickTimer);
      window.location.assign('/login?expired=1');
    }
  }

  function showWarning() {
    returnFocusTo = document.activeElement;
    tick();
    warning.hidden = false;
    tickTimer = window.setInterval(tick, 1000);
  }

  function start() {
    window.clearTimeout(warnTimer);
    window.clearInterval(tickTimer);
    warning.hidden = true;
    deadline = Date.now() + idleSeconds * 1000;
    countdown.textContent = mmss(leadSeconds);
    warnTimer = window.setTimeout(showWarning, (idleSeconds - leadSeconds) * 1000);
  }

  // Any logged-in request pushes the server's idle timeout out; this one does nothing else.
  stay.addEventListener('click', function (event) {
    event.preventDefault();
    fetch('/session/keepalive', { credentials: 'same-origin', cache: 'no-store', redirect: 'manual' }).then(
      function (response) {
        if (response.status !== 204) {
          window.location.assign(stay.getAttribute('href'));
          return;
        }
        start();
        status.textContent = 'You are still logged in. Your session was extended.';
        var target =
          returnFocusTo && document.body.contains(returnFocusTo) ? returnFocusTo : document.getElementById('main');
        if (target && target.focus) target.focus();
      },
      function () {
        window.location.assign(stay.getAttribute('href'));
      },
    );
  });

  start();
})();
