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
  .hint { color: #555; font-size: .9rem; } .meta { color: #666; font-family: ui-monospace, monospace; font-size: .85rem; }
</style>
</head>
<body>
<h1>push-gateway demo</h1>
<div class="grid">
  <span>Connection</span><span id="state" class="state connecting">connecting</span>
  <span>Device</span><span id="device">-</span>
  <span>Heartbeat interval</span><span id="interval">-</span>
  <span>Next heartbeat</span><span id="nextBeat">-</span>
  <span>Heartbeats acked</span><span id="beats">0</span>
  <span>Presence TTL</span><span id="ttl">-</span>
</div>
<p class="hint">The page beats at the gateway's minimum interval while it is visible (the SDK's foreground mode) and at
the learned one when hidden; each acked beat renews presence for the TTL. Another tab or program connecting as the
same device takes the session over (<code>/demo?device=demo-&lt;name&gt;</code> picks another device).</p>
<h2>Native push (Web Push)</h2>
<p class="hint">Registers this browser's push subscription with the gateway (<code>register_push</code>), so a
notification sent with a <code>fallback</code> reaches it natively when the page is closed or does not ack in time.</p>
<button id="enablePush" type="button">Enable native push</button> <span id="pushState">-</span>
<h2>Send a notification to this page</h2>
<form id="send">
  <input id="title" placeholder="Title" value="Hello from the demo">
  <input id="body" placeholder="Body" value="Sent through POST /v1/notifications">
  <textarea id="data" rows="2">{"demo": true}</textarea>
  <input id="apiKey" placeholder="API key (Bearer)">
  <label>Fallback <select id="fallback"><option>none</option><option>offline</option><option>unacked</option></select></label>
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

/**
 * The schedule shown: the SDK's next beat is due one `client.interval` after the last one (or
 * after `ready`), and presence lives the `ttl` the gateway granted after the last acked beat (in
 * `ready`, then in each beat's ack: 2.5 intervals + HEARTBEAT_TTL_SLACK_MS + room for the round
 * trip the SDK reported).
 */
export const DEMO_SCRIPT = `(async () => {
  const $ = (id) => document.getElementById(id);
  const device = new URLSearchParams(location.search).get('device');
  const res = await fetch('/demo/session' + (device ? '?device=' + encodeURIComponent(device) : ''));
  const session = await res.json();
  if (!session.token) { $('state').textContent = session.message || 'demo unavailable'; return; }
  if (session.apiKey) $('apiKey').value = session.apiKey;
  $('device').textContent = session.deviceId;
  const client = PushGateway.createPushClient({
    url: location.origin,
    token: () => session.token,
    network: 'web:demo',
    storage: PushGateway.localStorageStorage(),
  });
  const setState = (s, text) => { $('state').textContent = text || s; $('state').className = 'state ' + s; };
  const visible = () => document.visibilityState === 'visible';
  client.setForeground(visible());
  let beats = 0;
  let lastBeatAt = 0;
  let expiresAt = 0;
  const seconds = (ms) => (Math.max(0, ms) / 1000).toFixed(1) + ' s';
  client.on('ready', (r) => {
    lastBeatAt = Date.now();
    expiresAt = lastBeatAt + r.heartbeat.ttl;
  });
  client.on('online', () => { setState('online'); $('interval').textContent = client.interval + ' ms'; });
  client.on('offline', (why) => setState('offline', 'offline (' + why + '), reconnecting'));
  client.on('replaced', () => setState('closed', 'replaced: another connection took over ' + session.deviceId + ' (reload to take it back)'));
  client.on('error', (e) => { if (e.terminal) setState('closed', 'closed: ' + e.code); });
  client.on('heartbeat', (b) => {
    lastBeatAt = Date.now();
    if (b.ok) { $('beats').textContent = ++beats; expiresAt = lastBeatAt + b.ttl; }
    $('interval').textContent = client.interval + ' ms';
  });
  setInterval(() => {
    if (client.state !== 'online') { $('nextBeat').textContent = '-'; $('ttl').textContent = '-'; return; }
    $('nextBeat').textContent = 'in ' + seconds(lastBeatAt + client.interval - Date.now()) + ' (every ' + seconds(client.interval) + ')';
    $('ttl').textContent = seconds(expiresAt - Date.now()) + ' left (renewed by each acked beat)';
  }, 200);
  const show = (n, via) => {
    const li = document.createElement('li');
    li.className = 'notification ' + via;
    li.dataset.id = n.id;
    const text = document.createElement('div');
    text.textContent = (n.title ? n.title + ': ' : '') + (n.body || '') + ' ' + JSON.stringify(n.data);
    const meta = document.createElement('div');
    meta.className = 'meta';
    const at = (ms) => new Date(ms).toLocaleTimeString();
    meta.textContent = 'id ' + n.id + ' · sent ' + at(n.createdAt) + ' · received ' + at(Date.now()) + ' · ' + via;
    li.append(text, meta);
    $('notifications').prepend(li);
  };
  client.on('notification', (n) => show(n, 'socket'));
  // The service worker shows a native push and tells every demo page: the SDK then drops (and acks)
  // the socket copy of the same id, and the page lists it once.
  if ('BroadcastChannel' in window) {
    new BroadcastChannel('push-gateway-demo').onmessage = (ev) => {
      if (!ev.data || ev.data.type !== 'shown') return;
      client.markShown(ev.data.notification.id);
      show(ev.data.notification, 'native');
    };
  }
  const pushState = (text) => { $('pushState').textContent = text; };
  $('enablePush').addEventListener('click', async () => {
    if (!session.vapidPublicKey) return pushState('Web Push is off on this gateway (set WEBPUSH_VAPID_PUBLIC_KEY, WEBPUSH_VAPID_PRIVATE_KEY, WEBPUSH_SUBJECT)');
    if (!('serviceWorker' in navigator) || !('PushManager' in window)) return pushState('this browser has no Web Push');
    try {
      pushState('subscribing');
      if ('Notification' in window && Notification.permission === 'default') await Notification.requestPermission();
      const registration = await navigator.serviceWorker.register('/demo/push-sw.js');
      // Subscribing needs an active worker (serviceWorker.ready would wait for one controlling
      // this page, which the /demo/ scope does not cover).
      const worker = registration.installing || registration.waiting || registration.active;
      if (worker && worker.state !== 'activated') {
        await new Promise((resolve) => worker.addEventListener('statechange', () => worker.state === 'activated' && resolve()));
      }
      // A browser whose push service cannot be reached may never answer: give up after 10 s.
      const giveUp = new Promise((_, reject) => setTimeout(() => reject(new Error("the browser's push service did not answer within 10 s")), 10000));
      const subscription = (await registration.pushManager.getSubscription()) ||
        (await Promise.race([registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: session.vapidPublicKey }), giveUp]));
      await client.registerPush({ provider: 'webpush', subscription });
      pushState('registered: ' + new URL(subscription.endpoint).host);
    } catch (err) {
      pushState('failed: ' + (err && err.message ? err.message : String(err)));
    }
  });
  // For tests and the curious (devtools): the SDK client of this page.
  window.pushDemo = client;
  document.addEventListener('visibilitychange', () => client.setForeground(visible()));
  $('send').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let data;
    try { data = JSON.parse($('data').value || '{}'); } catch { $('sendResult').textContent = 'data is not JSON'; return; }
    const res = await fetch('/v1/notifications', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + $('apiKey').value },
      body: JSON.stringify({ deviceIds: [session.deviceId], title: $('title').value || undefined, body: $('body').value || undefined, data, ttl: 60, fallback: $('fallback').value }),
    });
    $('sendResult').textContent = res.status + ' ' + (await res.text());
  });
})();
`;

/**
 * The demo's service worker: a Web Push message carries the notification exactly as the socket's
 * `notification` event does (JSON). It is shown as a system notification and announced to the
 * demo pages (BroadcastChannel), which mark the id shown so the SDK drops the socket copy.
 */
export const DEMO_SERVICE_WORKER = `self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('push', (event) => {
  let n;
  try { n = event.data ? event.data.json() : null; } catch { n = null; }
  if (!n || typeof n.id !== 'string') return;
  new BroadcastChannel('push-gateway-demo').postMessage({ type: 'shown', notification: n });
  event.waitUntil(self.registration.showNotification(n.title || 'push-gateway', { body: n.body || JSON.stringify(n.data), tag: n.id, data: n }));
});
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow('/demo'));
});
`;
