/**
 * The ops console's shell: static HTML and CSS that hold no data. Everything shown comes from the
 * REST API, fetched by console.js with the credential the operator types in (see CONSOLE_SCRIPT).
 * No inline script or style: the console is served with a CSP that allows only its own files.
 */
export const CONSOLE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>push-gateway console</title>
<link rel="stylesheet" href="/console/console.css">
</head>
<body>
<header class="top">
  <h1>push-gateway console</h1>
  <span id="who" class="who"></span>
  <button id="logout" type="button" hidden>Log out</button>
</header>

<section id="login" class="login">
  <form id="login-form">
    <h2>Log in</h2>
    <p>An API key (one of <code>API_KEYS</code>) or the <code>OPS_TOKEN</code>. It is kept in this tab's
      sessionStorage only and sent as <code>Authorization: Bearer</code> to the REST API; nothing is
      shown without it. <code>OPS_TOKEN</code> reads everything but cannot send.</p>
    <input id="credential" type="password" autocomplete="off" spellcheck="false" placeholder="API key or OPS_TOKEN" aria-label="API key or OPS_TOKEN">
    <button type="submit">Log in</button>
    <p id="login-error" class="error" role="alert"></p>
  </form>
</section>

<main id="app" hidden>
  <section class="cards">
    <div class="card"><div class="label">Online devices (all instances)</div><div id="online-total" class="big">-</div></div>
    <div class="card"><div class="label">Heartbeats/s</div><div id="hb-now" class="big">-</div></div>
    <div class="card"><div class="label">Pushes/s</div><div id="push-now" class="big">-</div></div>
    <div class="card"><div class="label">Sessions expired by the sweeper</div><div id="expired-total" class="big">-</div></div>
  </section>

  <section>
    <h2>Online per instance</h2>
    <table id="instances"><thead><tr><th>Instance</th><th>Online</th><th>Last reported</th></tr></thead><tbody></tbody></table>
  </section>

  <section class="charts">
    <figure>
      <figcaption>Heartbeats/s <span class="hint">instance <span class="instance-id"></span>, last 5 minutes</span></figcaption>
      <svg id="chart-heartbeats" class="chart" viewBox="0 0 600 170" role="img" aria-label="heartbeats per second"></svg>
    </figure>
    <figure>
      <figcaption>Pushes/s <span class="legend a">sent</span> <span class="legend b">acked</span></figcaption>
      <svg id="chart-pushes" class="chart" viewBox="0 0 600 170" role="img" aria-label="pushes per second"></svg>
    </figure>
  </section>

  <section>
    <h2>Presence accuracy</h2>
    <p id="bound" class="bound"></p>
    <div class="charts">
      <figure>
        <figcaption>Sessions expired per second <span class="hint">devices that stopped beating and were retired</span></figcaption>
        <svg id="chart-expired" class="chart" viewBox="0 0 600 170" role="img" aria-label="expired sessions"></svg>
      </figure>
      <div>
        <table id="sweep-stats" class="kv"><tbody></tbody></table>
        <table id="sweep-buckets"><thead><tr><th>Sweep duration</th><th>Sweeps</th></tr></thead><tbody></tbody></table>
      </div>
    </div>
    <p>Measured on real lossy links, deaths and NATs: <a href="/console/presence-accuracy.md" target="_blank" rel="noopener">docs/presence-accuracy.md</a>.</p>
  </section>

  <section>
    <h2>Learned heartbeat interval per network</h2>
    <table id="networks"><thead><tr><th>Network</th><th>Samples</th><th>Recommended start interval</th><th>TTL at it</th><th>Offline at most after</th></tr></thead><tbody></tbody></table>
    <p id="networks-empty" class="hint" hidden>No network has stable-interval samples yet (devices announce one with <code>auth.network</code>).</p>
  </section>

  <section class="two">
    <div>
      <h2>Device</h2>
      <form id="device-form" class="inline">
        <input id="device-id" placeholder="device id" spellcheck="false" aria-label="device id">
        <button type="submit">Look up</button>
      </form>
      <div id="device-result"></div>
    </div>
    <div>
      <h2>Notification</h2>
      <form id="notification-form" class="inline">
        <input id="notification-id" placeholder="notification id" spellcheck="false" aria-label="notification id">
        <button type="submit">Look up</button>
      </form>
      <div id="notification-result"></div>
    </div>
  </section>

  <section>
    <h2>Send a test notification</h2>
    <form id="send-form">
      <fieldset id="send-fields">
        <label>To <select id="send-kind"><option value="deviceIds">devices</option><option value="userIds">users</option><option value="topic">topic</option></select></label>
        <input id="send-targets" placeholder="ids, comma-separated (or a topic)" spellcheck="false" aria-label="targets">
        <input id="send-title" placeholder="title" value="Test from the console" aria-label="title">
        <input id="send-body" placeholder="body" aria-label="body">
        <textarea id="send-data" rows="2" aria-label="data (JSON object)">{"console": true}</textarea>
        <label>ttl (s) <input id="send-ttl" type="number" min="0" value="60" aria-label="ttl in seconds"></label>
        <button type="submit">Send</button>
      </fieldset>
      <p id="send-note" class="hint" hidden>Logged in with OPS_TOKEN: sending needs an API key.</p>
      <p id="send-result"></p>
    </form>
  </section>
</main>
<script src="/console/console.js"></script>
</body>
</html>
`;

export const CONSOLE_STYLE = `
[hidden] { display: none !important; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f4f6f9; }
.top { display: flex; align-items: center; gap: 1rem; padding: .7rem 1.5rem; background: #1d2330; color: #fff; }
.top h1 { font-size: 1.1rem; margin: 0; flex: 1; }
.who { font-size: .85rem; opacity: .8; }
main, .login { max-width: 72rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
.login form { max-width: 28rem; margin: 3rem auto; display: grid; gap: .6rem; background: #fff; padding: 1.5rem; border-radius: 6px; box-shadow: 0 1px 3px #0002; }
section { margin-top: 1.4rem; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(13rem, 1fr)); gap: .8rem; }
.card, figure, table, .two > div, #send-form { background: #fff; border-radius: 6px; box-shadow: 0 1px 3px #0002; }
.card { padding: .8rem 1rem; }
.label { font-size: .8rem; color: #5b6475; }
.big { font-size: 1.8rem; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(26rem, 1fr)); gap: .8rem; }
figure { margin: 0; padding: .6rem .8rem; }
figcaption { font-weight: 600; margin-bottom: .3rem; }
.hint { font-weight: normal; color: #5b6475; font-size: .85rem; }
.chart { width: 100%; height: auto; display: block; }
.chart .grid { stroke: #e3e7ee; stroke-width: 1; }
.chart .axis { fill: #5b6475; font-size: 11px; }
.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; }
.chart .a, .legend.a { stroke: #2563eb; color: #2563eb; }
.chart .b, .legend.b { stroke: #16a34a; color: #16a34a; }
.chart .c { stroke: #dc2626; }
.chart .dashed { stroke-dasharray: 5 3; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .7rem; border-bottom: 1px solid #eef0f4; }
th { font-size: .8rem; color: #5b6475; font-weight: 600; }
.kv th { width: 40%; }
.two { display: grid; grid-template-columns: repeat(auto-fit, minmax(26rem, 1fr)); gap: .8rem; }
.two > div { padding: .8rem 1rem; }
.inline { display: flex; gap: .5rem; margin-bottom: .6rem; }
.inline input { flex: 1; }
#send-form { padding: .8rem 1rem; }
fieldset { border: 0; padding: 0; margin: 0; display: grid; gap: .5rem; max-width: 36rem; }
input, select, textarea, button { font: inherit; padding: .35rem .5rem; }
button { cursor: pointer; }
.error { color: #b3261e; }
.status-delivered, .online { color: #0a7a2f; font-weight: 600; }
.status-pending { color: #8a6d00; font-weight: 600; }
.status-expired, .status-replaced, .offline { color: #b3261e; font-weight: 600; }
.bound { background: #fff; border-left: 4px solid #2563eb; padding: .5rem .8rem; }
code { background: #eef0f4; padding: 0 .25rem; border-radius: 3px; }
`;
