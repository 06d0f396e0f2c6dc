// A client that test/netlab.e2e-spec.ts runs inside a lab namespace. Commands are JSON lines on
// stdin, events JSON lines on stdout, each stamped with Date.now() (same clock as the test), so
// round trips are measured here rather than across the stdin/stdout hop.
//   {"op":"connect","host":..,"port":..}  -> {"ev":"connected","port":<local port>}
//   {"op":"write","data":"x"}             -> {"ev":"wrote"}; each line received -> {"ev":"line","line":..}
//   {"op":"udp","host":..,"port":..,"count":N} -> datagrams "0".."N-1", then {"ev":"udpSent"}
// Socket trouble is reported, never fatal: {"ev":"error","code":..}, {"ev":"end"}, {"ev":"close"}.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const emit = (event) => process.stdout.write(JSON.stringify({ ...event, t: Date.now() }) + '\n');
let socket;

const ops = {
  connect({ host, port }) {
    socket = connect({ host, port }, () => emit({ ev: 'connected', port: socket.localPort }));
    socket.setNoDelay(true);
    createInterface({ input: socket }).on('line', (line) => emit({ ev: 'line', line }));
    socket.on('error', (err) => emit({ ev: 'error', code: err.code ?? err.message }));
    socket.on('end', () => emit({ ev: 'end' }));
    socket.on('close', () => emit({ ev: 'close' }));
  },
  write({ data }) {
    socket.write(`${data}\n`);
    emit({ ev: 'wrote' });
  },
  async udp({ host, port, count }) {
    const udp = createSocket('udp4');
    for (let i = 0; i < count; i++) {
      await new Promise((resolve, reject) => udp.send(String(i), port, host, (err) => (err ? reject(err) : resolve())));
    }
    udp.close();
    emit({ ev: 'udpSent' });
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line);
  Promise.resolve(ops[command.op](command)).catch((err) => emit({ ev: 'error', code: err.code ?? err.message }));
});
process.stdin.on('end', () => process.exit(0));
