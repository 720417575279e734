// Keeps the bank's operator page current without a reload: asks for the
// figures every few seconds and puts the server's words in place (text only,
// never HTML). An external file, because the Content-Security-Policy allows
// no inline script; without it the page still shows the figures it was
// served with.
(function () {
  'use strict';
  var url = document.body.getAttribute('data-status-url');
  var pollMs = Number(document.body.getAttribute('data-poll-ms')) || 2000;
  if (!url || !window.fetch) return;

  function setText(id, text) {
    var element = document.getElementById(id);
    if (element && element.textContent !== text) element.textContent = text;
  }

  function fillRows(id, rows, columns) {
    var body = document.getElementById(id);
    if (!body) return;
    var fresh = document.createDocumentFragment();
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      columns.forEach(function (column) {
        var td = document.createElement('td');
        td.textContent = String(row[column]);
        tr.appendChild(td);
      });
      fresh.appendChild(tr);
    });
    body.replaceChildren(fresh);
  }

  function show(page) {
    var asOf = document.getElementById('as-of');
    if (asOf) asOf.setAttribute('datetime', page.asOf);
    setText('as-of', page.asOfText);
    document.getElementById('updated').classList.remove('stale');
    setText('stale-note', '');
    Object.keys(page.figures).forEach(function (key) {
      setText(
        key.replace(/[A-Z]/g, function (c) {
          return '-' + c.toLowerCase();
        }),
        page.figures[key],
      );
    });
    fillRows('atm-rows', page.atms, ['atm', 'peer', 'uptime', 'requests']);
    fillRows('recent-rows', page.recent, ['time', 'atm', 'user', 'action', 'outcome']);
    document.getElementById('no-atms').hidden = page.atms.length > 0;
    document.getElementById('no-recent').hidden = page.recent.length > 0;
  }

  function stale() {
    document.getElementById('updated').classList.add('stale');
    setText('stale-note', 'The bank is not answering. ');
  }

  function poll() {
    window
      .fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (response) {
        if (!response.ok) throw new Error('status ' + response.status);
        return response.json();
      })
      .then(show, stale)
      .then(function () {
        window.setTimeout(poll, pollMs);
      });
  }
  window.setTimeout(poll, pollMs);
})();
