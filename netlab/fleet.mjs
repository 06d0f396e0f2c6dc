// A fleet of devices running the real client SDK (client/dist), started inside a lab network
// namespace by netlab/scenarios.mjs. It reports what each device sees as JSON lines on stdout:
//   {"t":<epoch ms>,"d":"<deviceId>","e":"ready"|"online"|"offline"|"hb"|"error"|"ended", ...}
// and ends its devices on SIGTERM. Configuration: one JSON argument
//   { url, secret, devices: [{ deviceId, userId, network? }], foreground?, transports? }
import { createPushClient } from '../client/dist/esm/index.js';
import jwt from 'jsonwebtoken';

const config = JSON.parse(process.argv[2] ?? '{}');
const clients = [];

const report = (d, e, extra = {}) => process.stdout.write(`${JSON.stringify({ t: Date.now(), d, e, ...extra })}\n`);

for (const device of config.devices) {
  const token = () => jwt.sign({ sub: device.userId, deviceId: device.deviceId }, config.secret, { algorithm: 'HS256', expiresIn: '2h' });
  const client = createPushClient({
    url: config.url,
    token,
    network: device.network,
    transports: config.transports ?? ['websocket'],
    autoConnect: false,
  });
  // The local port of the session's TCP connection (WebSocket transport), so the lab can follow
  // that connection on the gateway's side with ss. The SDK's socket is not public API: read defensively.
  const localPort = () => client['socket']?.io?.engine?.transport?.ws?._socket?.localPort;
  client.on('ready', (ready) => report(device.deviceId, 'ready', { sessionId: ready.sessionId, heartbeat: ready.heartbeat, port: localPort() }));
  client.on('offline', (reason) => report(device.deviceId, 'offline', { reason }));
  client.on('heartbeat', (beat) => report(device.deviceId, 'hb', { interval: beat.interval, ok: beat.ok }));
  client.on('error', (err) => report(device.deviceId, 'error', { code: err.code, message: err.message }));
  client.on('ended', (ended) => report(device.deviceId, 'ended', { reason: ended.reason }));
  if (config.foreground) client.setForeground(true);
  clients.push(client);
}

// Spread the handshakes over a second: a fleet is not a reconnect storm.
clients.forEach((client, i) => setTimeout(() => client.connect(), Math.floor((i * 1_000) / clients.length)));

const stop = () => {
  for (const client of clients) client.close();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
report('*', 'started', { devices: clients.length });
