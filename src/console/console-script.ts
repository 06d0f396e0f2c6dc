/**
 * The console's script (served at /console/console.js; the CSP allows no inline script). It keeps
 * the credential in sessionStorage (this tab only, gone when it closes), sends it as a bearer
 * header to the REST API, and polls every two seconds: GET /v1/ops/stats (charts, sweeps),
 * GET /v1/presence (online, networks) and whatever device or notification is looked up. Every
 * value reaches the page through textContent or SVG attributes, never as HTML. A 401 logs out.
 */
export const CONSOLE_SCRIPT = String.raw`(function () {
  'use strict';
  var STORE = 'push-gateway-console-credential';
  var POLL_MS = 2000;
  var WINDOW_MS = 5 * 60 * 1000;
  var SVG = 'http://www.w3.org/2000/svg';
  var $ = function (id) { return document.getElementById(id); };
  var state = { credential: null, loggedIn: false, stats: null, deviceId: null, device: null, deviceAt: 0, notificationId: null, timer: null };

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function seconds(ms) { return ms === undefined || ms === null ? '-' : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s'; }
  function time(ms) {
    if (!ms) return '-';
    var d = Date.now() - ms;
    return new Date(ms).toLocaleTimeString() + (d >= 0 ? ' (' + seconds(d) + ' ago)' : ' (in ' + seconds(-d) + ')');
  }
  function rate(v) { return v === undefined ? '-' : (Math.round(v * 10) / 10).toString(); }

  async function api(method, path, body) {
    var headers = { authorization: 'Bearer ' + state.credential };
    if (body !== undefined) headers['content-type'] = 'application/json';
    var res = await fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    var text = await res.text();
    var json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (res.status === 401) logout(state.loggedIn ? 'The credential was refused (401): log in again.' : 'That credential was refused (401).');
    return { status: res.status, body: json, text: text };
  }
  function message(r) { return r.status + ' ' + (r.body && r.body.message ? [].concat(r.body.message).join('; ') : r.text); }

  // ---- login ----
  async function login(credential) {
    state.credential = credential;
    var r = await api('GET', '/v1/ops/stats');
    if (r.status !== 200) {
      state.credential = null;
      if (r.status !== 401) $('login-error').textContent = 'Log-in failed: ' + message(r);
      return false;
    }
    sessionStorage.setItem(STORE, credential);
    state.loggedIn = true;
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    var ops = r.body.credential === 'ops_token';
    $('who').textContent = 'logged in with ' + (ops ? 'OPS_TOKEN (read-only)' : 'an API key');
    $('send-fields').disabled = ops;
    $('send-note').hidden = !ops;
    renderStats(r.body);
    schedule(0);
    return true;
  }
  function logout(reason) {
    sessionStorage.removeItem(STORE);
    state.credential = null;
    state.loggedIn = false;
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('who').textContent = '';
    $('login-error').textContent = reason || '';
  }

  // ---- polling ----
  function schedule(ms) {
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(poll, ms);
  }
  async function poll() {
    if (!state.credential) return;
    try {
      var jobs = [api('GET', '/v1/ops/stats'), api('GET', '/v1/presence')];
      if (state.deviceId) jobs.push(lookupDevice(state.deviceId));
      if (state.notificationId) jobs.push(lookupNotification(state.notificationId));
      var results = await Promise.all(jobs);
      if (results[0].status === 200) renderStats(results[0].body);
      if (results[1].status === 200) renderPresence(results[1].body);
    } catch (e) {
      $('who').textContent = 'poll failed: ' + e.message;
    }
    if (state.credential) schedule(POLL_MS);
  }

  // ---- charts (hand-written SVG) ----
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (v <= steps[i] * p) return steps[i] * p;
    return 10 * p;
  }
  function svgEl(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function drawChart(svg, now, points, lines) {
    var W = 600, H = 170, L = 44, R = 10, T = 10, B = 22;
    var max = 0;
    lines.forEach(function (line) { points.forEach(function (p) { max = Math.max(max, line.value(p)); }); });
    max = niceMax(max);
    clear(svg);
    var x = function (t) { return L + (W - L - R) * (1 - (now - t) / WINDOW_MS); };
    var y = function (v) { return T + (H - T - B) * (1 - v / max); };
    [0, max / 2, max].forEach(function (v) {
      svg.appendChild(svgEl('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), 'class': 'grid' }));
      svg.appendChild(svgEl('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'class': 'axis' }, String(Math.round(v * 100) / 100)));
    });
    [[WINDOW_MS, '-5 min'], [WINDOW_MS / 2, '-2.5 min'], [0, 'now']].forEach(function (tick) {
      svg.appendChild(svgEl('text', { x: x(now - tick[0]), y: H - 6, 'text-anchor': tick[0] === 0 ? 'end' : tick[0] === WINDOW_MS ? 'start' : 'middle', 'class': 'axis' }, tick[1]));
    });
    lines.forEach(function (line) {
      var pts = points.filter(function (p) { return now - p.at <= WINDOW_MS; })
        .map(function (p) { return x(p.at).toFixed(1) + ',' + y(line.value(p)).toFixed(1); });
      svg.appendChild(svgEl('polyline', { points: pts.join(' '), 'class': 'line ' + line.cls }));
    });
    var last = points.length ? lines[0].value(points[points.length - 1]) : 0;
    svg.setAttribute('data-last', String(last));
    svg.setAttribute('data-max', String(max));
    svg.setAttribute('data-points', String(points.length));
    svg.setAttribute('data-total', String(points.reduce(function (sum, p) { return sum + lines[0].value(p); }, 0)));
  }

  // ---- renderers ----
  function renderStats(s) {
    state.stats = s;
    var pts = s.points;
    var last = pts.length ? pts[pts.length - 1] : undefined;
    $('hb-now').textContent = rate(last && last.heartbeatsPerSecond);
    $('push-now').textContent = rate(last && last.pushesPerSecond);
    $('expired-total').textContent = String(s.totals.presenceExpired);
    Array.prototype.forEach.call(document.querySelectorAll('.instance-id'), function (n) { n.textContent = s.instanceId; });
    drawChart($('chart-heartbeats'), s.now, pts, [{ cls: 'a', value: function (p) { return p.heartbeatsPerSecond; } }]);
    drawChart($('chart-pushes'), s.now, pts, [
      { cls: 'a', value: function (p) { return p.pushesPerSecond; } },
      { cls: 'b dashed', value: function (p) { return p.acksPerSecond; } },
    ]);
    drawChart($('chart-expired'), s.now, pts, [{ cls: 'c', value: function (p) { return p.expired / (s.sampleIntervalMs / 1000); } }]);

    var b = s.presence;
    $('bound').textContent = 'A device that dies is shown offline at most ' + seconds(b.offlineBoundMs) +
      ' after its last heartbeat at the default interval of ' + seconds(b.heartbeatIntervalMs) +
      ': presence ttl ' + seconds(b.ttlMs) + ' (' + b.ttlFactor + ' intervals + ' + seconds(b.ttlSlackMs) +
      ' slack) plus one sweep (' + seconds(s.sweeps.intervalMs) + ').';
    var kv = $('sweep-stats').tBodies[0];
    clear(kv);
    [['Instance', s.instanceId], ['Sweeps run', s.sweeps.count], ['Mean sweep', s.sweeps.meanMs === undefined ? '-' : s.sweeps.meanMs + ' ms'],
      ['Sessions expired (TTL ran out)', s.totals.presenceExpired], ['Heartbeats handled', s.totals.heartbeats],
      ['Pushes sent / acked / unacked', s.totals.pushesSent + ' / ' + s.totals.pushesAcked + ' / ' + s.totals.pushesUnacked]]
      .forEach(function (row) { var tr = el('tr'); tr.appendChild(el('th', row[0])); tr.appendChild(el('td', row[1])); kv.appendChild(tr); });
    var bt = $('sweep-buckets').tBodies[0];
    clear(bt);
    var below = 0;
    s.sweeps.buckets.forEach(function (bucket) {
      var n = bucket.count - below;
      below = bucket.count;
      if (n === 0) return;
      var tr = el('tr');
      tr.appendChild(el('td', bucket.leMs === null ? 'longer' : '<= ' + bucket.leMs + ' ms'));
      tr.appendChild(el('td', n));
      bt.appendChild(tr);
    });
  }

  function renderPresence(p) {
    $('online-total').textContent = String(p.online);
    var tb = $('instances').tBodies[0];
    clear(tb);
    p.instances.forEach(function (i) {
      var tr = el('tr');
      tr.dataset.instance = i.instanceId;
      tr.appendChild(el('td', i.instanceId));
      tr.appendChild(el('td', i.online, 'online-count'));
      tr.appendChild(el('td', time(i.lastSeenAt)));
      tb.appendChild(tr);
    });
    var nb = $('networks').tBodies[0];
    clear(nb);
    var s = state.stats;
    p.networks.forEach(function (n) {
      var tr = el('tr');
      tr.dataset.network = n.network;
      tr.appendChild(el('td', n.network));
      tr.appendChild(el('td', n.samples));
      tr.appendChild(el('td', seconds(n.recommendedInterval), 'recommended'));
      var ttl = n.recommendedInterval !== undefined && s ? Math.ceil(n.recommendedInterval * s.presence.ttlFactor) + s.presence.ttlSlackMs : undefined;
      tr.appendChild(el('td', seconds(ttl)));
      tr.appendChild(el('td', seconds(ttl === undefined ? undefined : ttl + s.sweeps.intervalMs)));
      nb.appendChild(tr);
    });
    $('networks-empty').hidden = p.networks.length > 0;
  }

  var DEVICE_FIELDS = ['deviceId', 'userId', 'online', 'platform', 'instanceId', 'network', 'appState', 'interval', 'ttl', 'expiresAt', 'connectedAt', 'lastHeartbeatAt', 'lastSeenAt'];
  async function lookupDevice(id) {
    var r = await api('GET', '/v1/devices/' + encodeURIComponent(id));
    if (id !== state.deviceId) return r;
    var out = $('device-result');
    clear(out);
    if (r.status !== 200) { out.appendChild(el('p', message(r), 'error')); state.device = null; return r; }
    state.device = r.body;
    state.deviceAt = performance.now();
    var table = el('table', null, 'kv');
    table.id = 'device-record';
    var known = {};
    DEVICE_FIELDS.concat(Object.keys(r.body)).forEach(function (k) {
      if (known[k] || r.body[k] === undefined) return;
      known[k] = true;
      var v = r.body[k];
      var td = el('td');
      if (k === 'online') { td.textContent = v ? 'online' : 'offline'; td.className = v ? 'online' : 'offline'; }
      else if (k === 'ttl') { td.id = 'device-ttl'; td.textContent = seconds(v); }
      else if (k === 'interval') td.textContent = seconds(v);
      else if (/At$/.test(k)) td.textContent = time(v);
      else td.textContent = typeof v === 'object' ? JSON.stringify(v) : String(v);
      var tr = el('tr');
      tr.dataset.field = k;
      tr.appendChild(el('th', k === 'ttl' ? 'ttl (presence left)' : k));
      tr.appendChild(td);
      table.appendChild(tr);
    });
    out.appendChild(table);
    return r;
  }
  // The TTL counts down between polls; the next heartbeat (seen at the next poll) resets it.
  setInterval(function () {
    var cell = $('device-ttl');
    if (!cell || !state.device || state.device.ttl === undefined) return;
    cell.textContent = seconds(Math.max(0, state.device.ttl - (performance.now() - state.deviceAt)));
  }, 100);

  async function lookupNotification(id) {
    var r = await api('GET', '/v1/notifications/' + encodeURIComponent(id));
    if (id !== state.notificationId) return r;
    var out = $('notification-result');
    clear(out);
    if (r.status !== 200) { out.appendChild(el('p', message(r), 'error')); return r; }
    var n = r.body;
    out.appendChild(el('p', 'Created ' + time(n.createdAt) + (n.expiresAt ? ', kept until ' + new Date(n.expiresAt).toLocaleTimeString() : ', online devices only (ttl 0)')));
    var table = el('table');
    table.id = 'receipts';
    var head = el('tr');
    ['Device', 'Status', 'Since', 'Reason', 'Native fallback'].forEach(function (h) { head.appendChild(el('th', h)); });
    table.appendChild(head);
    n.targets.forEach(function (t) {
      var tr = el('tr');
      tr.dataset.device = t.deviceId;
      tr.appendChild(el('td', t.deviceId));
      tr.appendChild(el('td', t.status, 'receipt status-' + t.status));
      tr.appendChild(el('td', time(t.updatedAt)));
      tr.appendChild(el('td', t.reason || ''));
      tr.appendChild(el('td', t.fallback ? t.fallback.status + (t.fallback.reason ? ' (' + t.fallback.reason + ')' : '') : ''));
      table.appendChild(tr);
    });
    if (!n.targets.length) out.appendChild(el('p', 'No target devices (a topic nobody online had joined, or users without devices).', 'hint'));
    else out.appendChild(table);
    return r;
  }

  // ---- forms ----
  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var value = $('credential').value.trim();
    $('login-error').textContent = '';
    if (!value) { $('login-error').textContent = 'Type an API key or OPS_TOKEN.'; return; }
    login(value).then(function (ok) { if (ok) $('credential').value = ''; });
  });
  $('logout').addEventListener('click', function () { logout(''); });
  $('device-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    state.deviceId = $('device-id').value.trim() || null;
    clear($('device-result'));
    if (state.deviceId) lookupDevice(state.deviceId);
  });
  $('notification-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    state.notificationId = $('notification-id').value.trim() || null;
    clear($('notification-result'));
    if (state.notificationId) lookupNotification(state.notificationId);
  });
  $('send-form').addEventListener('submit', async function (ev) {
    ev.preventDefault();
    var out = $('send-result');
    out.className = '';
    var data;
    try { data = JSON.parse($('send-data').value || '{}'); } catch (e) { out.className = 'error'; out.textContent = 'data is not JSON: ' + e.message; return; }
    var kind = $('send-kind').value;
    var targets = $('send-targets').value.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
    var body = { data: data };
    body[kind] = kind === 'topic' ? targets[0] : targets;
    if ($('send-title').value) body.title = $('send-title').value;
    if ($('send-body').value) body.body = $('send-body').value;
    if ($('send-ttl').value !== '') body.ttl = Number($('send-ttl').value);
    var r = await api('POST', '/v1/notifications', body);
    if (r.status !== 202) { out.className = 'error'; out.textContent = message(r); return; }
    out.textContent = '202: ' + r.body.online + ' online, ' + r.body.queued + ' queued, id ';
    var code = el('code', r.body.id);
    code.id = 'sent-id';
    out.appendChild(code);
    $('notification-id').value = r.body.id;
    state.notificationId = r.body.id;
    await lookupNotification(r.body.id);
  });

  var saved = sessionStorage.getItem(STORE);
  if (saved) login(saved);
})();
`;
