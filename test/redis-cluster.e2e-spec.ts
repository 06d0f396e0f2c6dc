import { Cluster } from 'ioredis';
import { Socket } from 'socket.io-client';
import { StoreUnavailableError } from '../src/common/store-unavailable.error';
import { loadConfig } from '../src/config/app-config';
import { luaScript } from '../src/redis/lua-script';
import { keySlot } from '../src/redis/partitions';
import { createClient, RedisConnection } from '../src/redis/redis-connection';
import { api, connectDevice, nextEvent, sleep, waitFor } from './support/app';
import { getJson, RunningGateway, startGateway } from './support/gateways';
import { RawDevice } from './support/raw-device';
import { testClusterNodes, uniquePrefix } from './support/redis';
import { onNode, RedisCluster, servesSlot, startRedisCluster } from './support/redis-servers';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

/** Per node port: cluster_stats_messages_publish_sent (a classic PUBLISH goes to every node over the cluster bus). */
const busPublishes = (ports: number[]) =>
  Promise.all(ports.map((port) => onNode(port, async (c) => Number(/cluster_stats_messages_publish_sent:(\d+)/.exec((await c.call('CLUSTER', 'INFO')) as string)?.[1] ?? 0))));

/** Keys matching `pattern` on one node (SCAN). */
const countKeys = (port: number, pattern: string) =>
  onNode(port, async (c) => {
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
      n += keys.length;
      cursor = next;
    } while (cursor !== '0');
    return n;
  });

const publish = async (gw: RunningGateway, json: Json): Promise<{ status: number; body: Json }> => {
  const res = await api(gw.url, '/v1/notifications', { method: 'POST', json });
  return { status: res.status, body: (await res.json()) as Json };
};

/** Every event of the log, paged with GET /v1/events from the start. */
async function allEvents(gw: RunningGateway): Promise<Json[]> {
  const events: Json[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await getJson(gw.url, `/v1/events?limit=1000${after ? `&after=${after}` : ''}`);
    events.push(...(page.events as Json[]));
    if (page.next === after || (page.events as Json[]).length === 0) return events;
    after = page.next as string;
  }
}

/** The partitioned layout on a real Redis Cluster, with gateway processes (README "Redis key layout"). */
describe('Redis Cluster (real cluster, gateway processes)', () => {
  describe('3 masters', () => {
    const prefix = uniquePrefix('cluster');
    let own: RedisCluster | undefined;
    let nodes: string;
    let ports: number[];
    let env: Record<string, string>;
    const gateways: RunningGateway[] = [];
    const sockets: Socket[] = [];
    let a: RunningGateway;
    let b: RunningGateway;

    const device = async (gw: RunningGateway, deviceId: string, opts: { userId?: string; topics?: string[] } = {}) => {
      const socket = connectDevice(gw.url, deviceToken({ sub: opts.userId ?? `user-of-${deviceId}`, deviceId, topics: opts.topics }));
      sockets.push(socket);
      const received: Json[] = [];
      socket.on('notification', (n: Json, ack: () => void) => {
        received.push(n);
        ack();
      });
      const ready = await nextEvent<Json>(socket, 'ready');
      const timer = setInterval(() => socket.emit('heartbeat', {}), 300);
      socket.on('disconnect', () => clearInterval(timer));
      return { socket, received, ready };
    };

    beforeAll(async () => {
      nodes = testClusterNodes() ?? (own = await startRedisCluster({ masters: 3 })).spec;
      ports = nodes.split(',').map((hp) => Number(hp.split(':')[1]));
      // Probes every second, not every 200 ms (test/support/gateways.ts): under CI's load two
      // missed 200 ms probes made the watchdog rebuild the sharded subscriber, and that rebuild can
      // lose its subscriptions (docs/performance.md, "noticed": a known gap, not what these test).
      env = { REDIS_CLUSTER_NODES: nodes, REDIS_PREFIX: prefix, PRESENCE_EVENT_GRACE_MS: '0', REDIS_PROBE_INTERVAL_MS: '1000' };
      [a, b] = await Promise.all([startGateway('cl-a', env), startGateway('cl-b', env)]);
      gateways.push(a, b);
    }, 60_000);
    afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));
    afterAll(async () => {
      for (const gw of gateways) if (gw.process.child.exitCode === null) gw.process.child.kill('SIGKILL');
      await Promise.all(gateways.map((gw) => gw.process.exited));
      await own?.stop();
    });

    it('is ready with every master answering', async () => {
      const ready = (await (await fetch(`${a.url}/health/ready`)).json()) as Json;
      expect(ready.checks).toMatchObject({ store: { status: 'up', mode: 'cluster' }, pubsub: { status: 'up' }, masters: { status: 'up', total: 3 } });
    });

    it('spreads keys evenly: 4k devices connected through two gateways and 4k queued inboxes, per master within 10 %', async () => {
      // Heartbeats every minute on these two (they stay online for the test without a beat), and
      // bare WebSockets: thousands of Socket.IO clients would cost this process more than the gateways.
      const quiet = { ...env, HEARTBEAT_INTERVAL_MS: '60000', HEARTBEAT_MIN_MS: '1000' };
      const [qa, qb] = await Promise.all([startGateway('cl-spread-a', quiet), startGateway('cl-spread-b', quiet)]);
      gateways.push(qa, qb);
      // 4,000: about 1,333 per master, the 10 % bound some 4.5 standard deviations of a fair spread
      // (10k held the suite's other Cluster tests up for minutes under CI's load, with 20k sessions to end).
      const N = 4_000;
      const perMaster = async (pattern: string) => {
        const masters = (await onNode(ports[0]!, (c) => c.call('CLUSTER', 'NODES') as Promise<string>))
          .trim()
          .split('\n')
          .map((l) => l.split(' '))
          .filter((f) => f[2]!.split(',').includes('master'))
          .map((f) => Number(f[1]!.split(/[:@]/)[1]));
        return Promise.all(masters.map((port) => countKeys(port, `${prefix}*${pattern}`)));
      };
      const devices: RawDevice[] = [];
      try {
        for (let i = 0; i < N; i += 250) {
          devices.push(
            ...(await Promise.all(
              Array.from({ length: Math.min(250, N - i) }, (_, j) =>
                RawDevice.connect(i + j < N / 2 ? qa.url : qb.url, { token: deviceToken({ sub: `spread-u${(i + j) % 997}`, deviceId: `spread-${i + j}` }) }),
              ),
            )),
          );
        }
        // Known by their inbox only: N offline device ids, 1000 per publish.
        for (let i = 0; i < N; i += 1000) {
          const ids = Array.from({ length: 1000 }, (_, j) => `queued-${i + j}`);
          expect((await publish(qa, { deviceIds: ids, data: { n: i }, ttl: 600 })).status).toBe(202);
        }
        const spreads = { presence: await perMaster('presence:spread-*'), device: await perMaster('device:spread-*'), inbox: await perMaster('inbox:queued-*') };
        for (const [kind, counts] of Object.entries(spreads)) {
          expect(counts).toHaveLength(3);
          expect(counts.reduce((x, y) => x + y, 0)).toBe(N);
          const mean = N / 3;
          for (const n of counts) expect({ kind, n, off: Math.abs(n - mean) / mean < 0.1 }).toEqual({ kind, n, off: true });
        }
      } finally {
        // Ended here, not in the tests after this one: every session closed and written, then both
        // processes gone (nothing left for the others to sweep).
        devices.forEach((d) => d.close());
        const closed = Date.now();
        // Alone 1.3-2.9 s; under CI's load once more than 60 s (see the closing note of that round).
        await waitFor(async () => (await perMaster('presence:spread-*')).every((n) => n === 0), 150_000, 250);
        console.log(`spread: ${N} sessions ended in ${Date.now() - closed} ms`);
        for (const gw of [qa, qb]) gw.process.child.kill('SIGKILL');
      }
    }, 300_000);

    it('delivers across instances to deviceIds, userIds and topics over the mailboxes and the sharded adapter, without a classic PUBLISH', async () => {
      // Mailboxes and adapter channels are sharded channels (nothing on the classic ones).
      const sharded = (await Promise.all(ports.map((port) => onNode(port, (c) => c.call('PUBSUB', 'SHARDCHANNELS', `${prefix}*`) as Promise<string[]>)))).flat();
      expect(sharded).toEqual(expect.arrayContaining([`${prefix}mail:cl-a`, `${prefix}mail:cl-b`, `${prefix}sio#/#`]));
      const classic = (await Promise.all(ports.map((port) => onNode(port, (c) => c.call('PUBSUB', 'CHANNELS', `${prefix}*`) as Promise<string[]>)))).flat();
      expect(classic).toEqual([]);

      const before = await busPublishes(ports);
      // Devices of one user in several partitions, on both instances, all in one topic.
      const onA = await Promise.all(['x-1', 'x-2', 'x-3'].map((id) => device(a, id, { userId: 'x-user', topics: ['x-news'] })));
      const onB = await Promise.all(['x-4', 'x-5'].map((id) => device(b, id, { userId: 'x-user', topics: ['x-news'] })));
      for (const d of [...onA, ...onB]) expect(await d.socket.timeout(10_000).emitWithAck('subscribe', { topics: ['x-news'] })).toMatchObject({ ok: true });
      const all = [...onA, ...onB];

      const toDevices = await publish(b, { deviceIds: ['x-1', 'x-2', 'x-3', 'x-4'], data: { k: 'devices' }, ttl: 60 });
      const toUser = await publish(b, { userIds: ['x-user'], data: { k: 'user' }, ttl: 60 });
      const toTopic = await publish(a, { topic: 'x-news', data: { k: 'topic' } });
      expect([toDevices.status, toUser.status, toTopic.status]).toEqual([202, 202, 202]);
      expect(toDevices.body).toMatchObject({ online: 4, queued: 0 });
      expect(toUser.body).toMatchObject({ online: 5, queued: 0 });
      expect(toTopic.body).toMatchObject({ online: 5 });
      await waitFor(() => all.every((d, i) => d.received.length === (i < 4 ? 3 : 2)));
      for (const id of [toDevices.body.id, toUser.body.id]) {
        await waitFor(async () => ((await getJson(a.url, `/v1/notifications/${id}`)).targets as Json[]).every((t) => t.status === 'delivered'));
      }
      // No classic PUBLISH crossed the cluster bus (sharded messages stay on their master).
      expect(await busPublishes(ports)).toEqual(before);
    });

    it('replaces a session across instances: the old instance closes it on word from its mailbox', async () => {
      const old = await device(a, 'roamer');
      // 15 s: the spread test before this one leaves both masters and processes busy for a while
      // when the suite loads the machine; the word itself takes milliseconds.
      const replaced = nextEvent<Json>(old.socket, 'session_replaced', 15_000);
      const closed = nextEvent<string>(old.socket, 'disconnect', 15_000);
      const fresh = await device(b, 'roamer');
      expect(await replaced).toMatchObject({ sessionId: old.ready.sessionId });
      expect(await closed).toBe('io server disconnect');
      expect(fresh.ready.sessionId).not.toBe(old.ready.sessionId);
      expect(await getJson(a.url, '/v1/devices/roamer')).toMatchObject({ online: true, instanceId: 'cl-b' });
    });

    it('survives kill -9 of an instance: its devices go offline (instance_lost) and come back elsewhere, its work is taken over', async () => {
      const c = await startGateway('cl-c', env);
      gateways.push(c);
      const movers = await Promise.all(['k-1', 'k-2', 'k-3', 'k-4'].map((id) => device(c, id)));
      const ghost = await device(c, 'k-ghost');
      // A load balancer would send the reconnects to a live instance: the clients do that here.
      const moved = movers.map((m, i) => new Promise<Json>((resolve) => m.socket.once('disconnect', () => void device(a, `k-${i + 1}`).then(resolve))));
      ghost.socket.io.reconnection(false);
      c.process.child.kill('SIGKILL');
      const after = await Promise.all(moved);
      expect(after.map((m) => typeof m.ready.sessionId)).toEqual(['string', 'string', 'string', 'string']);
      for (const i of [1, 2, 3, 4]) expect(await getJson(b.url, `/v1/devices/k-${i}`)).toMatchObject({ online: true, instanceId: 'cl-a' });
      // ttl (1 s) + sweep (100 ms) + the lost instance's leases lapsing (3 ticks): within 10 s.
      await waitFor(async () => (await getJson(b.url, '/v1/devices/k-ghost')).online === false, 10_000, 100);
      // instance_lost once cl-c's record has lapsed; a sweep before that says heartbeat_timeout.
      await waitFor(async () => (await allEvents(b)).some((e) => e.type === 'device.offline' && e.data.deviceId === 'k-ghost'), 10_000, 200);
      const offline = (await allEvents(b)).filter((e) => e.type === 'device.offline' && e.data.deviceId === 'k-ghost');
      expect(offline.map((e) => e.data)).toEqual([expect.objectContaining({ instanceId: 'cl-c', reason: expect.stringMatching(/^(instance_lost|heartbeat_timeout)$/) })]);
      await waitFor(async () => !(await getJson(a.url, '/v1/presence')).instances.some((i: Json) => i.instanceId === 'cl-c'), 15_000, 200);
    }, 40_000);
  });

  /**
   * A manual failover (CLUSTER FAILOVER on a replica: the master stops taking writes, the replica
   * catches up, then takes over) under traffic. Nothing acknowledged may be lost: every 202 ends
   * delivered or pending, presence comes back, and each device's events are all in the log.
   * (A kill -9 of a master can lose its last writes: asynchronous replication, design open question 3.)
   */
  describe('failover: 3 masters + 3 replicas', () => {
    const prefix = uniquePrefix('failover');
    let cluster: RedisCluster;
    let a: RunningGateway;
    let b: RunningGateway;
    const sockets: Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    let stop = () => undefined as void;

    beforeAll(async () => {
      cluster = await startRedisCluster({ masters: 3, replicas: 1 });
      // Probes every second (as in the file's other gateways): with 200 ms probes the watchdog's
      // rebuild raced the slot refresh that moves the mailbox (about a second) in every failover,
      // and a rebuild racing it can leave the mailbox unsubscribed (docs/performance.md, "noticed").
      // The default is 5 s, after the refresh has long moved it.
      const env = { REDIS_CLUSTER_NODES: cluster.spec, REDIS_PREFIX: prefix, PRESENCE_EVENT_GRACE_MS: '0', ACK_TIMEOUT_MS: '2000', REDIS_PROBE_INTERVAL_MS: '1000' };
      [a, b] = await Promise.all([startGateway('fo-a', env), startGateway('fo-b', env)]);
    }, 60_000);
    afterAll(async () => {
      stop();
      timers.forEach((t) => clearInterval(t));
      sockets.forEach((s) => s.disconnect());
      for (const gw of [a, b]) if (gw && gw.process.child.exitCode === null) gw.process.child.kill('SIGKILL');
      await Promise.all([a, b].filter(Boolean).map((gw) => gw.process.exited));
      await cluster?.stop();
    });

    it('keeps every accepted notification, presence and event through CLUSTER FAILOVER under traffic', async () => {
      const ids = Array.from({ length: 24 }, (_, i) => `fo-${i}`);
      const received = new Map<string, Set<string>>(ids.map((id) => [id, new Set()]));
      const beatFailures: string[] = [];
      type Device = { socket: Socket; log: string[]; ready: Promise<unknown> };
      const devices: Device[] = [];
      const connect = (deviceId: string, i: number, device: Device = { socket: undefined as unknown as Socket, log: [], ready: Promise.resolve() }): Device => {
        // Even devices on a, odd on b. A device whose session ends connects again, as the SDK does
        // (the test helper's sockets do not reconnect by themselves).
        const socket = connectDevice(i % 2 ? b.url : a.url, deviceToken({ sub: `fo-user-${i % 5}`, deviceId }));
        sockets.push(socket);
        device.socket = socket;
        device.ready = nextEvent(socket, 'ready', 10_000);
        socket.on('notification', (n: Json, ack: () => void) => {
          received.get(deviceId)!.add(n.id as string);
          ack();
        });
        const timer = setInterval(() => {
          if (!socket.connected) return;
          socket
            .timeout(2_000)
            .emitWithAck('heartbeat', {})
            .then((r: Json) => (r?.ok ? undefined : beatFailures.push(`${deviceId}: ${JSON.stringify(r)}`)))
            .catch(() => beatFailures.push(`${deviceId}: no answer`));
        }, 300);
        timers.push(timer);
        const { log } = device;
        socket.on('disconnect', (reason: string) => {
          log.push(`disconnect ${reason}`);
          clearInterval(timer);
          if (!closing) setTimeout(() => connect(deviceId, i, device), 200);
        });
        socket.on('connect_error', (err: Error) => {
          log.push(`connect_error ${err.message}`);
          clearInterval(timer);
          if (!closing) setTimeout(() => connect(deviceId, i, device), 500);
        });
        socket.on('session_ended', (p: Json) => log.push(`session_ended ${JSON.stringify(p)}`));
        socket.on('ready', () => log.push('ready'));
        return device;
      };
      let closing = false;
      stop = () => (closing = true, undefined);
      ids.forEach((id, i) => devices.push(connect(id, i)));
      await Promise.all(devices.map((d) => d.ready));

      // Traffic: a publish every 20 ms alternating instances, to 3 devices each with a ttl (and
      // now and then to a device that never connects, which stays pending).
      const accepted: { id: string; targets: string[] }[] = [];
      let refused = 0;
      let running = true;
      let n = 0;
      const traffic = (async () => {
        while (running) {
          const targets = [ids[n % ids.length]!, ids[(n * 7 + 3) % ids.length]!, n % 10 === 0 ? `fo-never-${n}` : ids[(n * 5 + 1) % ids.length]!];
          const gw = n++ % 2 ? a : b;
          const res = await publish(gw, { deviceIds: [...new Set(targets)], data: { n }, ttl: 600 }).catch((): { status: number; body: Json } => ({ status: 0, body: {} }));
          if (res.status === 202) accepted.push({ id: res.body.id as string, targets: [...new Set(targets)] });
          else refused++;
          await sleep(20);
        }
      })();

      await sleep(1_500);
      // Fail over one master (a third of the partitions, and of the channels): the one holding
      // fo-b's mailbox, so that the test always covers an instance whose subscription is dropped.
      const mailbox = `${prefix}mail:fo-b`;
      const slot = await onNode(cluster.nodes[0]!.port, (c) => c.call('CLUSTER', 'KEYSLOT', mailbox) as Promise<number>);
      const topology = await cluster.topology();
      const master = topology.find((t) => t.role === 'master' && servesSlot(t, slot))!;
      const replica = topology.find((t) => t.role === 'replica' && t.masterId === master.id)!;
      await onNode(replica.server.port, (c) => c.call('CLUSTER', 'FAILOVER'));
      await waitFor(async () => (await cluster.topology()).find((t) => t.id === replica.id)?.role === 'master', 15_000, 100);
      await cluster.healthy(20_000);
      // fo-b's mailbox follows its slot to the promoted replica by itself (the sharded subscriber's
      // slot-map refresh, about a second; the watchdog's rebuild after two missed probes is the
      // backstop), and b's readiness sees its probes answered again.
      // 30 s: under CI's load on a slow machine the move took longer than 10 s (twice in one day).
      const moveStarted = Date.now();
      await waitFor(async () => ((await onNode(replica.server.port, (c) => c.call('PUBSUB', 'SHARDCHANNELS', mailbox))) as string[]).length === 1, 30_000, 100).catch(async (err: Error) => {
        const where = await Promise.all(cluster.nodes.map(async (n) => `${n.port}: ${JSON.stringify(await onNode(n.port, (c) => c.call('PUBSUB', 'SHARDCHANNELS', `${prefix}mail:*`)))}`));
        throw new Error(`${err.message}: ${mailbox} not subscribed on the promoted ${replica.server.port}; mailboxes per node ${where.join(', ')}; b's readiness ${JSON.stringify(await getJson(b.url, '/health/ready'))}`);
      });
      console.log(`failover: mailbox moved in ${Date.now() - moveStarted} ms`);
      await waitFor(async () => (await api(b.url, '/health/ready')).status === 200, 15_000, 250).catch(async (err: Error) => {
        throw new Error(`${err.message}: b's readiness ${JSON.stringify(await getJson(b.url, '/health/ready'))}`);
      });
      await sleep(2_000);
      running = false;
      await traffic;
      expect(accepted.length).toBeGreaterThan(20);

      // Presence recovers: every device online again (heartbeats answered ok).
      const offlineNow = async () => (await Promise.all(ids.map((id) => getJson(a.url, `/v1/devices/${id}`)))).filter((d) => d.online !== true);
      await waitFor(async () => (await offlineNow()).length === 0, 20_000, 200).catch(async (err: Error) => {
        throw new Error(`${err.message}: offline ${JSON.stringify(await offlineNow())}; sockets connected ${devices.filter((d) => d.socket.connected).length}/${ids.length}; ${devices
          .filter((d) => !d.socket.connected)
          .map((d) => d.log.slice(-6).join(', '))
          .join(' / ')}; beat failures ${beatFailures.slice(-5).join(' | ')}`);
      });
      // ... and answering heartbeats again: a round in which every device's heartbeat is answered
      // ok, within 15 s (5 s per answer: a loaded machine may be slow, not wrong; once in CI two
      // of 24 first heartbeats after the recovery were answered with an error). A failure shows
      // the acks that were not ok.
      const notOk: string[] = [];
      await waitFor(async () => {
        const beats = await Promise.all(devices.map((d) => (d.socket.timeout(5_000).emitWithAck('heartbeat', {}) as Promise<Json>).catch(() => ({ ok: 'no answer' }))));
        beats.forEach((r, i) => r.ok !== true && notOk.push(`${ids[i]}: ${JSON.stringify(r)}`));
        return beats.every((r) => r.ok === true);
      }, 15_000, 500).catch((err: Error) => {
        throw new Error(`${err.message}: heartbeats not ok ${notOk.slice(-10).join(' | ')}`);
      });
      if (notOk.length) process.stderr.write(`failover: heartbeats not ok before every device's was: ${notOk.join(' | ')}\n`);

      // Every accepted notification ends delivered (online targets) or pending (the never-connected one).
      const unsettled = async () => {
        const wrong: string[] = [];
        for (const { id, targets } of accepted) {
          const res = await api(b.url, `/v1/notifications/${id}`);
          if (res.status !== 200) {
            wrong.push(`${id}: ${res.status}`);
            continue;
          }
          const status = (await res.json()) as Json;
          const got = (status.targets as Json[]).map((t) => `${t.deviceId}=${t.status}`).sort();
          const want = targets.map((t) => `${t}=${t.startsWith('fo-never-') ? 'pending' : 'delivered'}`).sort();
          if (got.join() !== want.join()) wrong.push(`${id}: ${got.join(',')} (received: ${targets.filter((t) => received.get(t)?.has(id)).join(',')})`);
        }
        return wrong;
      };
      let wrong: string[] = [];
      await waitFor(async () => (wrong = await unsettled()).length === 0, 30_000, 500).catch(() => undefined);
      if (wrong.length) {
        // Not lost, only not settled in this session: a delivery handed to a mailbox on the master
        // being failed over (pub/sub is at-most-once) or an ack whose write met the failover leaves
        // the notification pending in the device's inbox. Every device reconnects, as a device does
        // after any hiccup, and must then get all of it: that is what "nothing accepted is lost" means.
        console.log(`failover: ${wrong.length} notifications unsettled before the devices reconnect, e.g. ${wrong.slice(0, 3).join(' | ')}`);
        for (const d of devices) d.socket.disconnect();
        await sleep(500);
        await Promise.all(devices.map((d) => d.ready));
        await waitFor(async () => (wrong = await unsettled()).length === 0, 30_000, 500).catch(() => undefined);
      }
      expect(wrong.slice(0, 5)).toEqual([]);
      for (const { id, targets } of accepted) for (const t of targets) if (!t.startsWith('fo-never-')) expect(received.get(t)!.has(id)).toBe(true);

      // No event lost: a notification.delivered for every delivered target, and each device's
      // presence events without a gap in seq (the grace is off, so every change is recorded).
      // (The pull API shows an event once every partition's floor passed it: about a second.)
      const wanted = accepted.flatMap(({ id, targets }) => targets.filter((t) => !t.startsWith('fo-never-')).map((t) => `${id}/${t}`));
      let events: Json[] = [];
      const missing = () => {
        const delivered = new Set(events.filter((e) => e.type === 'notification.delivered').map((e) => `${e.data.notificationId}/${e.data.deviceId}`));
        return wanted.filter((w) => !delivered.has(w));
      };
      await waitFor(async () => ((events = await allEvents(a)), missing().length === 0), 20_000, 500).catch(() => undefined);
      const newest = Math.max(...events.map((e) => e.timestamp as number));
      if (missing().length) {
        const types = events.reduce<Record<string, number>>((acc, e) => ((acc[e.type] = (acc[e.type] ?? 0) + 1), acc), {});
        throw new Error(`notification.delivered missing from GET /v1/events: ${missing().length} of ${wanted.length}, e.g. ${missing()[0]}; the log has ${events.length} events ${JSON.stringify(types)}, the newest ${Date.now() - newest} ms old`);
      }
      for (const id of ids) {
        const seqs = events.filter((e) => e.type.startsWith('device.') && e.data.deviceId === id).map((e) => e.data.seq as number);
        expect(seqs.length).toBeGreaterThan(0);
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
      }
      // How the failover looked from the outside (not asserted: 503 is an allowed answer while it runs).
      console.log(`failover: ${accepted.length} publishes accepted, ${refused} refused, ${beatFailures.length} heartbeats failed`);
    }, 120_000);
  });

  /**
   * ioredis 6's auto-pipelining sends one turn's commands for a node as one pipeline. When the node
   * has lost its slots (a failover) and answers MOVED for two slots at once, the replies differ, and
   * ioredis neither resends them nor reads the slot map again: every later turn went to the old
   * node the same way (CI: heartbeats of 5 devices `unavailable` for over 20 s). The gateway reads
   * the map again when a script call meets MOVED, and every second on each Cluster client
   * (SLOT_MAP_REFRESH_MS).
   */
  describe('routing after a failover, commands for two slots of the demoted master in one turn', () => {
    const prefix = uniquePrefix('moved');
    let cluster: RedisCluster;
    beforeAll(async () => {
      cluster = await startRedisCluster({ masters: 3, replicas: 1 });
    }, 60_000);
    afterAll(async () => {
      await cluster?.stop();
    });

    /**
     * A master with slots, its replica, and two keys of different slots it serves. Each test takes
     * a shard that has not failed over yet: in CI the second test's failover, on the shard the first
     * had just failed over, did not complete within 15 s (not reproduced here). The failover waits
     * for the replica's link to be up (a demoted master resyncs with its new master first), and
     * asks again if Redis aborted it (RedisCluster.failOver).
     */
    const used = new Set<string>();
    const pick = async (tag: string) => {
      const topology = await cluster.topology();
      const master = topology.find((t) => t.role === 'master' && t.slots.length > 0 && !used.has(t.id))!;
      const replica = topology.find((t) => t.role === 'replica' && t.masterId === master.id)!;
      used.add(master.id).add(replica.id);
      const keys: string[] = [];
      for (let i = 0; keys.length < 2; i++) {
        const key = `${prefix}${tag}-${i}`;
        if (servesSlot(master, keySlot(key)) && !keys.some((k) => keySlot(k) === keySlot(key))) keys.push(key);
      }
      /** CLUSTER FAILOVER on the replica: it takes the master's slots over, the master becomes its replica. */
      const failOver = async () => {
        await waitFor(async () => /master_link_status:up/.test(await onNode<string>(replica.server.port, (c) => c.info('replication'))), 15_000, 100);
        await cluster.failOver(replica);
        await cluster.healthy(20_000);
      };
      return { keys, failOver };
    };
    const nodes = () => cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));

    it('a script call that meets MOVED reads the slot map again, and the next calls reach the promoted replica', async () => {
      const client = createClient({ mode: 'cluster', nodes: nodes() }, 2_000, true) as Cluster;
      const incr = luaScript({ name: 'incr', keys: ['counter'], args: {}, body: "return redis.call('INCR', counterKey)" }).bind(client);
      const both = (keys: string[]) => Promise.allSettled(keys.map((k) => incr({ keys: { counter: k }, args: {} })));
      try {
        await client.connect();
        const { keys, failOver } = await pick('script');
        expect((await both(keys)).map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
        await failOver();
        // The first turn after the failover goes to the old master, which answers MOVED for each
        // slot: unavailable (not applied), never a raw error.
        for (const r of await both(keys)) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(StoreUnavailableError);
        // Then the calls reach the promoted replica; without a new slot map they never did.
        await waitFor(async () => (await both(keys)).every((r) => r.status === 'fulfilled'), 3_000, 100);
      } finally {
        client.disconnect();
      }
    }, 60_000);

    it('plain commands of the command and heartbeat clients reach the promoted replica once the periodic refresh has read the new map', async () => {
      const connection = new RedisConnection(loadConfig({ REDIS_CLUSTER_NODES: cluster.spec, REDIS_PREFIX: prefix }));
      try {
        await connection.connect();
        const { keys, failOver } = await pick('plain');
        for (const client of [connection.client!, connection.beats!]) await Promise.all(keys.map((k) => client.set(k, '1')));
        await failOver();
        for (const client of [connection.client!, connection.beats!]) {
          await waitFor(async () => (await Promise.allSettled(keys.map((k) => client.set(k, '2')))).every((r) => r.status === 'fulfilled'), 5_000, 100);
        }
      } finally {
        await connection.onApplicationShutdown();
      }
    }, 60_000);
  });
});
