// Shows every <time data-local> in the browser's own time zone. The server
// already wrote it in the ATM's zone, named, so without scripts the page is
// still right; this only moves it to where the customer is. The options match
// TIME_FORMAT in atm-web/display.ts.
(function () {
  'use strict';
  var format = new Intl.DateTimeFormat('en-US', {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    timeZoneName: 'short',
  });
  var times = document.querySelectorAll('time[data-local][datetime]');
  for (var i = 0; i < times.length; i += 1) {
    var when = new Date(times[i].getAttribute('datetime'));
    if (!isNaN(when.getTime())) times[i].textContent = format.format(when);
  }
})();
