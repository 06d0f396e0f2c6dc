// The simulated devices of `npm run simulate` and the traffic they make, through the built stores
// (dist/): connects, heartbeats on each device's own schedule, disconnects, publishes and acks,
// and the sweeper's claims. No sockets: this is the Redis side of a fleet of gateways.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './harness.mjs';

const require = createRequire(import.meta.url);
export const dist = (path) => require(join(ROOT, 'dist', path));

const { isStableRun, bucketOf } = dist('presence/network-intervals.js');
const { indexAfter } = dist('presence/presence.types.js');

/**
 * N devices, described by typed arrays (a million devices cost ~30 MB here). Ids are as long as
 * typical real ones: device ids 20 characters, user ids 17, session ids 36 (a UUID's length).
 * Users own 2 and 1 devices alternately (1.5 on average). Each device sits on one of `networks`
 * network keys; each network has a learned interval, drawn from `intervals` in turn.
 */
export class Population {
  constructor({ devices, tag, intervals, networks, instances, policy, cohortFrom = devices }) {
    this.size = devices;
    this.cohortFrom = cohortFrom;
    this.tag = tag;
    this.intervals = intervals;
    this.networks = networks;
    this.instances = instances;
    this.policy = policy;
    this.state = new Uint8Array(devices); // 0 never seen, 1 online, 2 silent (died), 3 offline known
    this.gen = new Uint16Array(devices);
    this.beatsAt = new Uint16Array(devices);
    this.runStart = new Float64Array(devices);
    this.nextAt = new Float64Array(devices);
    // What each device's record holds, as SessionService's `recorded` keeps it; 0 = not known.
    this.expiresAt = new Float64Array(devices);
    this.indexAt = new Float64Array(devices);
  }

  /** A connect of device i that wrote `expiresAt` (its record's expiry and index score). */
  connected(i, expiresAt) {
    this.expiresAt[i] = this.indexAt[i] = expiresAt;
  }

  /** After a write whose outcome is not known: device i's next heartbeat checks its record. */
  forget(i) {
    this.expiresAt[i] = this.indexAt[i] = 0;
  }

  /**
   * Device i's heartbeat at `now`, with what its record holds as SessionService passes it (its
   * interval and network never change here: its connect wrote them); keeps what this one writes.
   */
  heartbeatUpdate(i, now, sampleBucket) {
    const interval = this.interval(i);
    const u = {
      deviceId: this.deviceId(i),
      sessionId: this.sessionId(i),
      instanceId: this.instanceId(i),
      now,
      grace: 0,
      interval,
      ttl: this.policy.ttlFor(interval),
      network: this.network(i),
      sampleBucket,
      recordedInterval: interval,
      recordedNetwork: this.network(i),
      recordedExpiresAt: this.expiresAt[i] || undefined,
      recordedIndexAt: this.indexAt[i] || undefined,
    };
    this.indexAt[i] = indexAfter(u);
    this.expiresAt[i] = now + u.ttl;
    return u;
  }

  deviceId(i) {
    return `d-${this.tag}-${i.toString(36).padStart(11, '0')}`;
  }

  indexOf(deviceId) {
    return parseInt(deviceId.slice(deviceId.lastIndexOf('-') + 1), 36);
  }

  userId(i) {
    return `u-${this.tag}-${Math.floor((i * 2) / 3).toString(36).padStart(8, '0')}`;
  }

  /** UUID-shaped and derived from (device, generation), so a worker process can name the session too. */
  sessionId(i, gen = this.gen[i]) {
    const hex = i.toString(16).padStart(12, '0');
    return `${this.tag.padStart(8, '0').slice(-8)}-${gen.toString(16).padStart(4, '0')}-4000-8000-${hex}`;
  }

  network(i) {
    return `wifi:sim-${i % this.networks}`;
  }

  interval(i) {
    return this.intervals[(i % this.networks) % this.intervals.length];
  }

  /** Devices past `cohortFrom` (the offline cohort) sit on an instance of their own (see simulate.mjs). */
  instanceId(i) {
    return i >= this.cohortFrom ? 'sim-gw-cohort' : `sim-gw-${i % this.instances}`;
  }

  platform(i) {
    return ['ios', 'android', 'web'][i % 3];
  }

  ref(i) {
    return { deviceId: this.deviceId(i), sessionId: this.sessionId(i), userId: this.userId(i), instanceId: this.instanceId(i) };
  }

  /** Mean heartbeats per second the online devices owe. */
  beatRate() {
    let rate = 0;
    for (let i = 0; i < this.size; i++) if (this.state[i] === 1) rate += 1000 / this.interval(i);
    return rate;
  }

  count(state) {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (this.state[i] === state) n++;
    return n;
  }
}

/** Keeps up to `max` samples, each kept with equal probability (reservoir sampling). */
export class Reservoir {
  constructor(max = 50_000) {
    this.max = max;
    this.values = [];
    this.seen = 0;
  }

  add(v) {
    this.seen++;
    if (this.values.length < this.max) this.values.push(v);
    else {
      const j = Math.floor(Math.random() * this.seen);
      if (j < this.max) this.values[j] = v;
    }
  }

  summary() {
    const s = [...this.values].sort((a, b) => a - b);
    const at = (p) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN);
    const r = (x) => Math.round(x * 100) / 100;
    return { count: this.seen, p50: r(at(0.5)), p99: r(at(0.99)), max: r(s.at(-1) ?? NaN) };
  }
}

/** Runs fn(i) for i in [from, to) with at most `concurrency` in flight. */
export async function pool(from, to, concurrency, fn) {
  let next = from;
  const lane = async () => {
    while (next < to) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(0, to - from)) }, lane));
}

/** Connects, disconnects and reconnects devices through the presence store, as a gateway would. */
export class Sessions {
  constructor(pop, store, counters) {
    this.pop = pop;
    this.store = store;
    this.c = counters;
    this.beats = null; // set by Beats
  }

  async connect(i, { firstBeatIn } = {}) {
    const pop = this.pop;
    pop.gen[i] = (pop.gen[i] + 1) & 0xffff;
    const now = Date.now();
    const interval = pop.interval(i);
    pop.state[i] = 1;
    pop.beatsAt[i] = 0;
    pop.runStart[i] = now;
    try {
      await this.store.connect({
        deviceId: pop.deviceId(i),
        userId: pop.userId(i),
        sessionId: pop.sessionId(i),
        instanceId: pop.instanceId(i),
        platform: pop.platform(i),
        network: pop.network(i),
        now,
        interval,
        ttl: pop.policy.ttlFor(interval),
      });
      pop.connected(i, now + pop.policy.ttlFor(interval));
      this.c.connects++;
    } catch (err) {
      pop.forget(i);
      this.c.errors.connect = (this.c.errors.connect ?? 0) + 1;
      this.c.lastError = err.message;
    }
    this.beats?.schedule(i, now + (firstBeatIn ?? Math.random()) * interval);
  }

  async disconnect(i, reason = 'client_close') {
    const ref = this.pop.ref(i);
    this.pop.state[i] = 3;
    try {
      await this.store.disconnect([ref], Date.now(), reason);
      this.c.disconnects++;
    } catch (err) {
      this.c.errors.disconnect = (this.c.errors.disconnect ?? 0) + 1;
      this.c.lastError = err.message;
    }
  }
}

/**
 * Heartbeats on each device's own schedule (its network's learned interval), as the gateway sends
 * them: the TTL from the real HeartbeatPolicy, a stable-interval sample once a run is stable (the
 * session service's rule). A timing wheel of `slotMs` slots; at most `maxInFlight` outstanding.
 */
export class Beats {
  constructor(pop, store, sessions, counters, { maxInFlight = 4_000, slotMs = 20 } = {}) {
    this.pop = pop;
    this.store = store;
    this.sessions = sessions;
    sessions.beats = this;
    this.c = counters;
    this.maxInFlight = maxInFlight;
    this.slotMs = slotMs;
    this.wheel = new Map();
    this.cursor = Math.floor(Date.now() / slotMs);
    this.ready = [];
    this.readyHead = 0;
    this.inFlight = 0;
    this.paused = false;
    this.latency = new Reservoir();
    this.lag = new Reservoir();
    this.timer = null;
  }

  schedule(i, at) {
    this.pop.nextAt[i] = at;
    const slot = Math.max(this.cursor, Math.floor(at / this.slotMs));
    let list = this.wheel.get(slot);
    if (!list) this.wheel.set(slot, (list = []));
    list.push(i);
  }

  start() {
    const tick = () => {
      this.tick();
      this.timer = setTimeout(tick, this.slotMs / 2);
    };
    tick();
  }

  stop() {
    clearTimeout(this.timer);
  }

  /** Measurement windows that must see no heartbeats pause the schedule; beats due meanwhile go late. */
  pause() {
    this.paused = true;
  }

  resume() {
    this.paused = false;
  }

  /** Resolves once nothing is in flight. */
  async drain() {
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 5));
  }

  resetStats() {
    this.latency = new Reservoir();
    this.lag = new Reservoir();
  }

  /** Beats due now and not yet sent (the schedule's backlog). */
  backlog() {
    return this.ready.length - this.readyHead;
  }

  tick() {
    const nowSlot = Math.floor(Date.now() / this.slotMs);
    for (; this.cursor <= nowSlot; this.cursor++) {
      const list = this.wheel.get(this.cursor);
      if (!list) continue;
      this.wheel.delete(this.cursor);
      for (const i of list) {
        if (this.pop.state[i] === 1 && Math.max(this.cursor, Math.floor(this.pop.nextAt[i] / this.slotMs)) === this.cursor) this.ready.push(i);
      }
    }
    if (this.paused) return;
    while (this.inFlight < this.maxInFlight && this.readyHead < this.ready.length) {
      const i = this.ready[this.readyHead++];
      if (this.pop.state[i] === 1) void this.beat(i);
    }
    if (this.readyHead > 100_000) {
      this.ready = this.ready.slice(this.readyHead);
      this.readyHead = 0;
    }
  }

  async beat(i) {
    const pop = this.pop;
    const now = Date.now();
    const interval = pop.interval(i);
    const scheduled = pop.nextAt[i];
    const gen = pop.gen[i];
    this.lag.add(Math.max(0, now - scheduled));
    pop.beatsAt[i]++;
    if (pop.beatsAt[i] === 1) pop.runStart[i] = now;
    const stable = isStableRun(pop.beatsAt[i], pop.runStart[i], now, interval);
    this.inFlight++;
    let alive = true;
    try {
      alive = await this.store.heartbeat(pop.heartbeatUpdate(i, now, stable ? bucketOf(interval) : undefined));
      this.c.heartbeats++;
      this.latency.add(Date.now() - now);
    } catch (err) {
      pop.forget(i);
      this.c.errors.heartbeat = (this.c.errors.heartbeat ?? 0) + 1;
      this.c.lastError = err.message;
    } finally {
      this.inFlight--;
    }
    if (pop.gen[i] !== gen || pop.state[i] !== 1) return;
    if (!alive) {
      // Presence ran out before this beat (the simulation fell behind): the device reconnects.
      this.c.expiredBeats++;
      void this.sessions.connect(i, { firstBeatIn: 1 });
      return;
    }
    const next = scheduled + interval;
    this.schedule(i, next > Date.now() ? next : Date.now() + interval);
  }
}

/**
 * The notification store's deadline sweeper, where the store has one (`claimDue`: ack deadlines
 * and ttl expiries fire from Redis, DeadlineSweeper every 500 ms); a no-op for a store without.
 */
export class Deadlines {
  constructor(store, counters, partitions = 1) {
    this.store = store;
    this.c = counters;
    this.partitions = partitions;
    this.durations = new Reservoir(10_000);
  }

  get present() {
    return typeof this.store.claimDue === 'function';
  }

  async sweepOnce(now = Date.now()) {
    if (!this.present) return 0;
    const t0 = performance.now();
    // Every partition's due index at once, as DeadlineSweeper does over its leases.
    const claimIn = async (p) => {
      let n = 0;
      for (let i = 0; i < 50; i++) {
        const claim = await this.store.claimDue(now, 1_000, 15_000, p);
        n += claim.claimed ?? 0;
        if (!claim.more) break;
      }
      return n;
    };
    const partitions = Array.from({ length: this.partitions }, (_, p) => p);
    const claimed = (await Promise.all(partitions.map(claimIn))).reduce((x, y) => x + y, 0);
    this.durations.add(performance.now() - t0);
    this.c.deadlinesClaimed += claimed;
    return claimed;
  }
}

/** The sweeper of every simulated instance, as SessionSweeper runs it (batches, then held offlines). */
export class Sweeper {
  constructor(pop, store, sessions, counters, { batch, maxBatches, graceMs }) {
    Object.assign(this, { pop, store, sessions, c: counters, batch, maxBatches, graceMs });
    this.durations = new Reservoir(10_000);
  }

  async sweepOnce(now = Date.now()) {
    const t0 = performance.now();
    // Every simulated instance is alive; one sweeper does every partition (a single lease holder),
    // all partitions at once, as SessionSweeper and OfflineGraceService do over their leases.
    const live = new Map(Array.from({ length: this.pop.instances }, (_, k) => [`sim-gw-${k}`, 0]));
    const partitions = Array.from({ length: this.store.partitions }, (_, p) => p);
    const claimIn = async (p) => {
      let n = 0;
      for (let b = 0; b < this.maxBatches; b++) {
        const got = await this.store.claimExpired(p, now, this.batch, live);
        n += got.length;
        for (const ref of got) this.onClaimed(ref);
        if (got.length < this.batch) break;
      }
      return n;
    };
    const releaseIn = async (p) => {
      let n = 0;
      for (let b = 0; b < this.maxBatches; b++) {
        const got = await this.store.releaseHeldOfflines(p, now, this.batch);
        n += got;
        if (got < this.batch) break;
      }
      return n;
    };
    const claimed = (await Promise.all(partitions.map(claimIn))).reduce((x, y) => x + y, 0);
    const released = (await Promise.all(partitions.map(releaseIn))).reduce((x, y) => x + y, 0);
    const ms = performance.now() - t0;
    this.durations.add(ms);
    this.c.swept += claimed;
    this.c.released += released;
    return { claimed, released, ms };
  }

  onClaimed(ref) {
    const i = this.pop.indexOf(ref.deviceId);
    if (!(i >= 0 && i < this.pop.size) || ref.sessionId !== this.pop.sessionId(i)) return;
    if (this.pop.state[i] === 1) {
      // A device the simulation still counts online ran out: its beats came too late.
      this.c.falselyExpired++;
      void this.sessions.connect(i, { firstBeatIn: 1 });
    } else if (this.pop.state[i] === 2) {
      this.pop.state[i] = 3;
    }
  }
}

/**
 * Publishes as the REST API does (NotificationsService): a user's targets resolved with
 * userDeviceIds, then one atomic publish; every target the store reports online acks it after
 * `ackDelayMs` (DeliveryService.settle -> NotificationStore.ack).
 */
export class Publisher {
  constructor(pop, presence, notifications, counters, config) {
    Object.assign(this, { pop, presence, notifications, c: counters, config });
    this.latency = new Reservoir();
    this.inFlight = 0;
    this.text = 'Your order #17 has shipped and arrives on Tuesday between 9 and 12. Tap for tracking details.';
  }

  /** A random known device (online or offline). */
  pick() {
    for (let t = 0; t < 20; t++) {
      const i = Math.floor(Math.random() * this.pop.size);
      if (this.pop.state[i] !== 0) return i;
    }
    return 0;
  }

  async publishOne(now = Date.now()) {
    const { pop } = this;
    const roll = Math.random();
    const ttlSec = Math.random() < 0.5 ? 0 : 3_600;
    let deviceIds;
    const t0 = performance.now();
    this.inFlight++;
    try {
      if (roll < 0.6) deviceIds = [pop.deviceId(this.pick())];
      else if (roll < 0.9) deviceIds = await this.presence.userDeviceIds(pop.userId(this.pick()), now);
      else deviceIds = Array.from({ length: 10 }, () => pop.deviceId(this.pick()));
      deviceIds = [...new Set(deviceIds)];
      const id = randomUUID();
      const payload = { id, data: { orderId: Math.floor(Math.random() * 1e6), text: this.text }, title: 'Order shipped', createdAt: now, expiresAt: ttlSec > 0 ? now + ttlSec * 1000 : undefined };
      const json = JSON.stringify(payload);
      const result = await this.notifications.publish({
        payload,
        payloadJson: json,
        deviceIds,
        effectiveExpiresAt: now + (ttlSec > 0 ? ttlSec * 1000 : this.config.ackTimeoutMs),
        keepOffline: ttlSec > 0,
        maxInbox: this.config.inboxMaxSize,
        retentionMs: this.config.notificationRetentionMs,
        now,
        // As NotificationsService sends them where the store has ack deadlines and native-push
        // fallback (ignored by a store without): the ack deadline armed, no fallback asked for.
        ackDeadlineAt: now + this.config.ackTimeoutMs,
        fallback: 'none',
        leaseMs: 15_000,
      });
      this.c.publishes++;
      this.c.targets += deviceIds.length;
      this.c.payloadBytes += Buffer.byteLength(json);
      if (result.kind === 'accepted') {
        this.c.queued += result.answer.queued;
        this.c.onlineTargets += result.online.length;
        this.latency.add(performance.now() - t0);
        for (const target of result.online) {
          this.c.acksOwed++;
          setTimeout(() => void this.ack(payload, target.deviceId), this.config.ackDelayMs);
        }
      }
    } catch (err) {
      this.c.errors.publish = (this.c.errors.publish ?? 0) + 1;
      this.c.lastError = err.message;
    } finally {
      this.inFlight--;
    }
  }

  async ack(payload, deviceId) {
    try {
      await this.notifications.ack(payload, deviceId, Date.now());
      this.c.acks++;
    } catch (err) {
      this.c.errors.ack = (this.c.errors.ack ?? 0) + 1;
      this.c.lastError = err.message;
    } finally {
      this.c.acksOwed--;
    }
  }

  /** Publishes at `rate` per second for `ms`, at most `maxInFlight` outstanding; resolves when all are answered and acked. */
  async run(rate, ms, maxInFlight = 500) {
    const start = performance.now();
    let sent = 0;
    while (performance.now() - start < ms) {
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      while (sent < due && this.inFlight < maxInFlight) {
        sent++;
        void this.publishOne();
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    while (this.inFlight > 0 || this.c.acksOwed > 0) await new Promise((r) => setTimeout(r, 5));
    return sent;
  }
}

export function newCounters() {
  return {
    connects: 0,
    disconnects: 0,
    heartbeats: 0,
    expiredBeats: 0,
    falselyExpired: 0,
    swept: 0,
    released: 0,
    deadlinesClaimed: 0,
    publishes: 0,
    targets: 0,
    queued: 0,
    onlineTargets: 0,
    acks: 0,
    acksOwed: 0,
    payloadBytes: 0,
    errors: {},
    lastError: null,
  };
}
