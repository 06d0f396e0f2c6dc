/**
 * The demo page: plain HTML and the SDK's browser bundle (global PushGateway), no build step. Its
 * script is a file of its own (DEMO_SCRIPT at /demo/demo.js): the Content-Security-Policy allows
 * same-origin scripts only, no inline ones.
 */
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>push-gateway demo</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.05rem; margin-top: 1.6rem; }
  .grid { display: grid; grid-template-columns: 11rem 1fr; gap: .3rem 1rem; }
  .state { font-weight: 600; } .online { color: #0a7a2f; } .offline, .closed { color: #b3261e; } .connecting { color: #8a6d00; }
  form { display: grid; gap: .5rem; max-width: 30rem; } input, textarea { font: inherit; padding: .35rem; }
  ul { padding-left: 1.1rem; } li { margin: .3rem 0; } code { background: #f3f3f3; padding: 0 .2rem; }
</style>
</head>
<body>
<h1>push-gateway demo</h1>
<div class="grid">
  <span>Connection</span><span id="state" class="state connecting">connecting</span>
  <span>Device</span><span id="device">-</span>
  <span>Heartbeat interval</span><span id="interval">-</span>
  <span>Heartbeats acked</span><span id="beats">0</span>
</div>
<h2>Send a notification to this page</h2>
<form id="send">
  <input id="title" placeholder="Title" value="Hello from the demo">
  <input id="body" placeholder="Body" value="Sent through POST /v1/notifications">
  <textarea id="data" rows="2">{"demo": true}</textarea>
  <input id="apiKey" placeholder="API key (Bearer)">
  <button type="submit">Send</button>
  <span id="sendResult"></span>
</form>
<h2>Notifications received</h2>
<ul id="notifications"></ul>
<script src="/demo/push-client.js"></script>
<script src="/demo/demo.js"></script>
</body>
</html>
`;

export const DEMO_SCRIPT = `(async () => {
  const $ = (id) => document.getElementById(id);
  const session = await (await fetch('/demo/session')).json();
  if (!session.token) { $('state').textContent = session.message || 'demo unavailable'; return; }
  if (session.apiKey) $('apiKey').value = session.apiKey;
  $('device').textContent = session.deviceId;
  const client = PushGateway.createPushClient({
    url: location.origin,
    token: () => session.token,
    network: 'web:demo',
    storage: PushGateway.localStorageStorage(),
  });
  const setState = (s) => { $('state').textContent = s; $('state').className = 'state ' + s; };
  let beats = 0;
  client.on('online', () => { setState('online'); $('interval').textContent = client.interval + ' ms'; });
  client.on('offline', (why) => setState('offline'));
  client.on('replaced', () => setState('closed'));
  client.on('error', (e) => { if (e.terminal) setState('closed'); });
  client.on('heartbeat', (b) => { if (b.ok) $('beats').textContent = ++beats; $('interval').textContent = client.interval + ' ms'; });
  client.on('notification', (n) => {
    const li = document.createElement('li');
    li.className = 'notification';
    li.dataset.id = n.id;
    li.textContent = (n.title ? n.title + ': ' : '') + (n.body || '') + ' ' + JSON.stringify(n.data);
    $('notifications').prepend(li);
  });
  document.addEventListener('visibilitychange', () => client.setForeground(document.visibilityState === 'visible'));
  $('send').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let data;
    try { data = JSON.parse($('data').value || '{}'); } catch { $('sendResult').textContent = 'data is not JSON'; return; }
    const res = await fetch('/v1/notifications', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + $('apiKey').value },
      body: JSON.stringify({ deviceIds: [session.deviceId], title: $('title').value || undefined, body: $('body').value || undefined, data, ttl: 60 }),
    });
    $('sendResult').textContent = res.status + ' ' + (await res.text());
  });
})();
`;
