// @ts-check
// Network lab: real clients in their own network namespaces behind a router namespace, with delay,
// loss, NAT idle timeouts and dead links produced by the kernel, not simulated. Linux, root only.
//
//   root ns (servers on 0.0.0.0) <-veth-> router ns <-veth-> client ns (clients)
//
// Each network gets its own router and client namespace, so per-namespace sysctls (conntrack
// timeouts) never clash. This kernel has no sch_netem: delay and loss come from nfq-impair
// (netlab/nfq-impair.c) serving one NFQUEUE queue per direction in the router's FORWARD chain.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SOURCE = join(HERE, 'nfq-impair.c');
const BUILD_DIR = join(HERE, 'build');
const BINARY = join(BUILD_DIR, 'nfq-impair');
const NFQ_HEADER = '/usr/include/libnetfilter_queue/libnetfilter_queue.h';
// Root-namespace veths are named after their address block, so the kernel refuses a second one
// with EEXIST: that is what keeps labs in parallel processes off each other's addresses.
const VETH_PREFIX = 'netlab';
const HOLE_CHAIN = 'netlab-hole';

/**
 * @typedef {{ seen: number, dropped: number, accepted: number, pending: number, enobufs: number }} QueueCounters
 * @typedef {{
 *   up?: QueueCounters, down?: QueueCounters,
 *   blackholed: { up: number, down: number },
 *   invalidDropped: { forward: number, input: number },
 * }} NetworkCounters
 *   up: client->server, down: server->client (nfq-impair queues, only on impaired networks);
 *   blackholed: packets dropped by blackhole() (all periods); invalidDropped: NAT packets of no
 *   known mapping, dropped in the router (forwarded ones, and ones addressed to the router itself).
 * @typedef {{ src: string, dst: string, sport: number, dport: number }} FlowTuple
 * @typedef {{ proto: string, state: string, timeoutS: number, orig: FlowTuple, reply: FlowTuple }} NatFlow
 * @typedef {{ idleTimeoutS: number }} NatOptions
 * @typedef {{ name: string, delayMs?: number, jitterMs?: number, lossPct?: number, seed?: number, nat?: NatOptions }} NetworkOptions
 * @typedef {import('node:child_process').ChildProcess} ChildProcess
 * @typedef {import('node:child_process').SpawnOptions} SpawnOptions
 */

/** @param {string} name */
function which(name) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const path = join(dir, name);
    try {
      if (statSync(path).isFile()) return path;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

const tools = () => ({
  ip: which('ip'), iptables: which('iptables'), 'iptables-restore': which('iptables-restore'),
  'iptables-save': which('iptables-save'), conntrack: which('conntrack'),
});
/** Full path of a tool labSupport() found. @param {keyof ReturnType<typeof tools>} name */
const tool = (name) => tools()[name] ?? name;

function binaryIsFresh() {
  return existsSync(BINARY) && (!existsSync(SOURCE) || statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs);
}

/**
 * Whether this machine can run the lab, and if not, why (for a test suite's skip message).
 * @returns {{ ok: true } | { ok: false, reason: string }}
 */
export function labSupport() {
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (network namespaces, iptables)' };
  const missing = Object.entries(tools()).filter(([, path]) => !path).map(([name]) => name);
  if (missing.length) return { ok: false, reason: `missing commands: ${missing.join(', ')} (Debian: iproute2 iptables conntrack)` };
  if (!binaryIsFresh()) {
    if (!which('gcc')) return { ok: false, reason: 'nfq-impair is not built and gcc is missing' };
    if (!existsSync(NFQ_HEADER)) return { ok: false, reason: `nfq-impair is not built and ${NFQ_HEADER} is missing (Debian: libnetfilter-queue-dev)` };
  }
  return { ok: true };
}

/**
 * @param {string} file
 * @param {string[]} args
 * @returns {Promise<string>}
 */
function run(file, args) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${[file, ...args].join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** @param {string} file @param {string[]} args */
function runSyncQuiet(file, args) {
  try {
    return execFileSync(file, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  } catch {
    return '';
  }
}

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/** @param {string} ip */
function listNamespaces(ip) {
  return runSyncQuiet(ip, ['netns', 'list']).split('\n').map((line) => line.split(' ')[0] ?? '').filter(Boolean);
}

/** Kills whatever still runs in these namespaces, then deletes them (their veths go with them). */
function deleteNamespacesSync(/** @type {string} */ ip, /** @type {string[]} */ names) {
  for (const ns of names) {
    for (const pid of runSyncQuiet(ip, ['netns', 'pids', ns]).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    runSyncQuiet(ip, ['netns', 'del', ns]);
  }
}

function buildImpairer() {
  if (binaryIsFresh()) return;
  mkdirSync(BUILD_DIR, { recursive: true });
  // Built under a private name and renamed, so labs starting in parallel never run a half-written file.
  const tmp = `${BINARY}.${process.pid}.tmp`;
  execFileSync(which('gcc') ?? 'gcc', ['-O2', '-Wall', '-Wextra', '-o', tmp, SOURCE, '-lnetfilter_queue'], { stdio: ['ignore', 'ignore', 'pipe'] });
  renameSync(tmp, BINARY);
}

/** @param {string} address */
const ipToInt = (address) => address.split('.').reduce((n, part) => n * 256 + Number(part), 0);

/** Address blocks (third octet of `${base}.X.0/24`) that a route of the host already covers. */
function blocksInUse(/** @type {string} */ ip, /** @type {string} */ base) {
  const used = new Set();
  for (const line of runSyncQuiet(ip, ['-4', '-o', 'route', 'show', 'table', 'all']).split('\n')) {
    const [dest] = line.trim().split(/\s+/);
    const dev = /\bdev (\S+)/.exec(line)?.[1] ?? '';
    if (!dest || !/^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dest) || dev.startsWith(VETH_PREFIX)) continue;
    const [addr = '', bitsText = '32'] = dest.split('/');
    const bits = Number(bitsText);
    if (bits === 0) continue;
    const start = ipToInt(addr);
    const end = start + 2 ** (32 - bits) - 1;
    for (let block = 0; block < 256; block++) {
      const lo = ipToInt(`${base}.${block}.0`);
      if (start <= lo + 255 && end >= lo) used.add(block);
    }
  }
  return used;
}

/** @type {Set<Lab>} */
const liveLabs = new Set();
let exitHooksInstalled = false;

function installExitHooks() {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const lab of liveLabs) lab.destroySync();
  });
  for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
    const onSignal = () => {
      for (const lab of liveLabs) lab.destroySync();
      // Alone, we restore the default (die of the signal); others listening decide for themselves.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

let labSeq = 0;

/**
 * Starts a lab: removes namespaces left by crashed labs of this prefix (whose process is dead) and
 * builds nfq-impair into netlab/build/ if needed.
 * @param {{ prefix?: string, base?: string }} [options] prefix: lowercase letters naming this
 *   user's namespaces; base: the /16 (two octets) the networks take /24 blocks from.
 */
export async function createLab({ prefix = 'pgl', base = '10.213' } = {}) {
  if (!/^[a-z]{1,8}$/.test(prefix)) throw new Error(`netlab: prefix must be 1-8 lowercase letters, got ${prefix}`);
  if (!/^\d{1,3}\.\d{1,3}$/.test(base)) throw new Error(`netlab: base must be two octets like 10.213, got ${base}`);
  const support = labSupport();
  if (!support.ok) throw new Error(`netlab: ${support.reason}`);
  const ip = /** @type {string} */ (tools().ip);
  const owned = new RegExp(`^${prefix}(\\d+)x\\d+-`);
  const stale = listNamespaces(ip).filter((ns) => {
    const pid = Number(owned.exec(ns)?.[1] ?? NaN);
    return Number.isInteger(pid) && !alive(pid);
  });
  deleteNamespacesSync(ip, stale);
  buildImpairer();
  return new Lab(`${prefix}${process.pid}x${labSeq++}`, base);
}

export class Lab {
  /** @type {Network[]} */
  #networks = [];
  /** @type {Promise<void> | undefined} */
  #destroyed;
  #base;

  /** @param {string} id @param {string} base */
  constructor(id, base) {
    /** Prefix of every namespace of this lab: `${prefix}${pid}x${n}`. */
    this.id = id;
    this.#base = base;
    liveLabs.add(this);
    installExitHooks();
  }

  /**
   * Adds a network: a router namespace and a client namespace behind it. Delay, jitter and loss
   * apply to each direction; with `nat`, the router masquerades the clients and forgets idle
   * mappings after `nat.idleTimeoutS` without telling either end.
   * @param {NetworkOptions} options
   */
  async addNetwork(options) {
    if (this.#destroyed) throw new Error('netlab: the lab was destroyed');
    if (!/^[a-z0-9]{1,16}$/.test(options.name)) throw new Error(`netlab: network name must be 1-16 of [a-z0-9], got ${options.name}`);
    if (this.#networks.some((n) => n.name === options.name)) throw new Error(`netlab: network ${options.name} exists`);
    const network = new Network(this.id, options, this.#base);
    this.#networks.push(network);
    await network.setUp();
    return network;
  }

  /** Kills nfq-impair and spawned children and deletes the namespaces. Idempotent. */
  destroy() {
    this.#destroyed ??= (async () => {
      await Promise.all(this.#networks.map((n) => n.stopProcesses()));
      this.destroySync();
    })();
    return this.#destroyed;
  }

  /** What destroy() does, synchronously (for process exit and signals). */
  destroySync() {
    this.#destroyed ??= Promise.resolve();
    for (const network of this.#networks) network.killProcessesSync();
    const ip = tools().ip;
    if (ip) deleteNamespacesSync(ip, this.#networks.flatMap((n) => [n.ns, n.routerNs]));
    liveLabs.delete(this);
  }
}

/**
 * The lab's processes (impairers, the gateway, its Redis, the SDK fleets) ahead of whatever else
 * the machine runs, as root: the lab measures links, and its delays and timers are real time. In
 * CI it runs beside two Jest workers on 2 cores; a starved impairer holds packets longer than the
 * delay it was given, and a starved fleet fires its ack timeouts late or early (the loss2
 * scenario saw SDK acks missed after the gateway had answered, in 2 of 3 clean-clone runs on one
 * machine). Without the privilege it does nothing.
 * @param {number | undefined} pid
 */
export function favour(pid) {
  if (pid === undefined) return;
  try {
    setPriority(pid, -10);
  } catch {
    // not root: the lab runs at the default priority
  }
}

/** One nfq-impair process: counters come back as a JSON line after SIGUSR1. */
class Impairer {
  /** @type {((c: QueueCounters) => void)[]} */
  #waiters = [];
  /** @type {Promise<QueueCounters> | undefined} */
  #pending;
  /** @type {QueueCounters | undefined} */
  last;

  /** @param {ChildProcess} child */
  constructor(child) {
    this.child = child;
    let output = '';
    child.stderr?.on('data', (d) => (output = (output + String(d)).slice(-4000)));
    this.exited = new Promise((resolve) => child.once('exit', resolve));
    /** @type {Promise<void>} */
    this.ready = new Promise((resolve, reject) => {
      child.once('exit', (code, signal) => reject(new Error(`nfq-impair exited (${code ?? signal}) before it was ready: ${output.trim()}`)));
      createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) }).on('line', (line) => {
        if (line === 'ready') {
          this.#ref(false);
          resolve();
        }
        else if (line.startsWith('{')) {
          this.last = JSON.parse(line);
          for (const w of this.#waiters.splice(0)) w(/** @type {QueueCounters} */ (this.last));
        }
      });
    });
  }

  /**
   * Held only while waiting for an answer: a script that forgot destroy() should still exit (its
   * exit hook cleans up) rather than be kept alive by the lab's helpers.
   * @param {boolean} on
   */
  #ref(on) {
    for (const handle of [this.child, this.child.stdout, this.child.stderr]) {
      const h = /** @type {{ ref(): void, unref(): void } | null} */ (handle);
      if (on) h?.ref();
      else h?.unref();
    }
  }

  /** @returns {Promise<QueueCounters>} */
  counters() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return this.last ? Promise.resolve(this.last) : Promise.reject(new Error('nfq-impair is not running'));
    }
    // Signals coalesce: concurrent callers share one request.
    this.#pending ??= new Promise((resolve) => {
      this.#ref(true);
      this.#waiters.push((c) => {
        this.#ref(false);
        this.#pending = undefined;
        resolve(c);
      });
      this.child.kill('SIGUSR1');
    });
    return this.#pending;
  }
}

export class Network {
  /** @type {Set<ChildProcess>} */
  #children = new Set();
  /** @type {{ up: Impairer, down: Impairer } | undefined} */
  #impairers;
  #holeTotals = { up: 0, down: 0 };
  #holed = false;
  #block = -1;
  #options;
  #base;
  #ip;

  /** @param {string} labId @param {NetworkOptions} options @param {string} base */
  constructor(labId, options, base) {
    this.name = options.name;
    this.#options = options;
    this.#base = base;
    this.routerNs = `${labId}-${options.name}-r`;
    /** The client namespace: run clients here (see spawn). */
    this.ns = `${labId}-${options.name}-c`;
    this.clientIp = '';
    /** The root-namespace address that clients here use to reach a server listening on 0.0.0.0. */
    this.serverIp = '';
    /** The router's upstream address: what a server sees as the peer of a NAT network's clients. */
    this.routerIp = '';
    const t = tools();
    this.#ip = /** @type {string} */ (t.ip);
  }

  /** @param {string} ns @param {string} script */
  #sh(ns, script) {
    return run(this.#ip, ['netns', 'exec', ns, 'sh', '-ec', script]);
  }

  async setUp() {
    const { ip } = { ip: this.#ip };
    const { delayMs = 0, jitterMs = 0, lossPct = 0, nat } = this.#options;
    await run(ip, ['netns', 'add', this.routerNs]);
    await run(ip, ['netns', 'add', this.ns]);
    const noV6 = 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6';
    await Promise.all([this.#sh(this.routerNs, noV6), this.#sh(this.ns, noV6)]);

    const rootVeth = await this.#claimBlock();
    const net = `${this.#base}.${this.#block}`;
    this.serverIp = `${net}.1`;
    this.routerIp = `${net}.2`;
    this.clientIp = `${net}.130`;
    const clientNet = `${net}.128/25`;
    await run(ip, ['-n', this.routerNs, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns]);
    await Promise.all([
      this.#batch(null, [`addr add ${net}.1/30 dev ${rootVeth}`, `link set ${rootVeth} up`]),
      this.#batch(this.routerNs, [`addr add ${net}.2/30 dev wan`, `addr add ${net}.129/25 dev lan`, 'link set lo up', 'link set wan up', 'link set lan up']),
      this.#batch(this.ns, [`addr add ${this.clientIp}/25 dev eth0`, 'link set lo up', 'link set eth0 up', `route add default via ${net}.129`]),
    ]);
    // With NAT the root namespace has no route to the clients: it only ever sees the router's address.
    if (!nat) await run(ip, ['route', 'add', clientNet, 'via', `${net}.2`, 'dev', rootVeth]);

    const sysctls = ['echo 1 > /proc/sys/net/ipv4/ip_forward'];
    if (nat) {
      // Like a carrier NAT: an idle mapping is forgotten, and a mid-stream packet after that is
      // not adopted as a new flow (tcp_loose=0) but INVALID, dropped both ways without an answer.
      sysctls.push(
        `echo ${Math.round(nat.idleTimeoutS)} > /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established`,
        'echo 0 > /proc/sys/net/netfilter/nf_conntrack_tcp_loose',
      );
    }
    await this.#sh(this.routerNs, sysctls.join('\n'));

    const impaired = delayMs > 0 || jitterMs > 0 || lossPct > 0;
    const filter = ['*filter', `:${HOLE_CHAIN} - [0:0]`, `-A FORWARD -j ${HOLE_CHAIN}`];
    if (nat) filter.push('-A FORWARD -m conntrack --ctstate INVALID -j DROP', '-A INPUT -m conntrack --ctstate INVALID -j DROP');
    if (impaired) filter.push('-A FORWARD -i lan -o wan -j NFQUEUE --queue-num 0', '-A FORWARD -i wan -o lan -j NFQUEUE --queue-num 1');
    filter.push('COMMIT');
    if (nat) filter.push('*nat', `-A POSTROUTING -s ${clientNet} -o wan -j MASQUERADE`, 'COMMIT');
    if (impaired) {
      const seed = this.#options.seed ?? this.#block + 1;
      const args = (/** @type {number} */ queue) => [
        '--queue', String(queue), '--delay-ms', String(delayMs), '--jitter-ms', String(jitterMs),
        '--loss', String(lossPct), '--seed', String(seed * 2 + queue),
      ];
      const start = (/** @type {number} */ queue) => {
        const child = spawn(this.#ip, ['netns', 'exec', this.routerNs, BINARY, ...args(queue)], { stdio: ['ignore', 'pipe', 'pipe'] });
        favour(child.pid);
        return new Impairer(child);
      };
      this.#impairers = { up: start(0), down: start(1) };
      await Promise.all([this.#impairers.up.ready, this.#impairers.down.ready]);
    }
    await this.#restoreRules(filter.join('\n') + '\n');
  }

  /** @param {string | null} ns @param {string[]} commands */
  #batch(ns, commands) {
    const child = spawn(this.#ip, [...(ns ? ['-n', ns] : []), '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    return this.#finish(child, commands.join('\n') + '\n', `ip ${ns ?? ''} -batch`);
  }

  /** @param {string} rules @param {boolean} [noflush] */
  #restoreRules(rules, noflush = false) {
    const args = ['netns', 'exec', this.routerNs, tool('iptables-restore'), '-w', ...(noflush ? ['--noflush'] : [])];
    const child = spawn(this.#ip, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    return this.#finish(child, rules, 'iptables-restore');
  }

  /** @param {ChildProcess} child @param {string} input @param {string} what @returns {Promise<void>} */
  #finish(child, input, what) {
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += String(d)));
    child.stdin?.end(input);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`netlab: ${what} failed: ${stderr.trim()}`))));
    });
  }

  /** Takes the first free /24 of the base, starting at a pid-dependent place to avoid contention. */
  async #claimBlock() {
    const used = blocksInUse(this.#ip, this.#base);
    const start = process.pid % 256;
    for (let i = 0; i < 256; i++) {
      const block = (start + i) % 256;
      if (used.has(block)) continue;
      const veth = `${VETH_PREFIX}${block}`;
      try {
        await run(this.#ip, ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'wan', 'netns', this.routerNs]);
        this.#block = block;
        return veth;
      } catch (err) {
        if (!/exists/i.test(String(err))) throw err;
      }
    }
    throw new Error(`netlab: no free /24 left in ${this.#base}.0.0/16`);
  }

  /**
   * Runs `ip netns exec <ns> command ...args`; the child is killed by lab.destroy().
   * @param {string} command @param {readonly string[]} [args] @param {SpawnOptions} [options]
   * @returns {ChildProcess}
   */
  spawn(command, args = [], options = {}) {
    const child = spawn(this.#ip, ['netns', 'exec', this.ns, command, ...args], options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Drops every packet of this network both ways from now on, established flows included: no RST, no ICMP. */
  async blackhole() {
    if (this.#holed) return;
    // One iptables-restore --noflush: both directions go dark in the same instant.
    await this.#restoreRules(`*filter\n-A ${HOLE_CHAIN} -i lan -o wan -j DROP\n-A ${HOLE_CHAIN} -i wan -o lan -j DROP\nCOMMIT\n`, true);
    this.#holed = true;
  }

  /** Ends blackhole(). */
  async restore() {
    if (!this.#holed) return;
    const { blackholed } = await this.#ruleCounters();
    await run(this.#ip, ['netns', 'exec', this.routerNs, tool('iptables'), '-w', '-F', HOLE_CHAIN]);
    this.#holeTotals = { up: this.#holeTotals.up + blackholed.up, down: this.#holeTotals.down + blackholed.down };
    this.#holed = false;
  }

  async #ruleCounters() {
    const saved = await run(this.#ip, ['netns', 'exec', this.routerNs, tool('iptables-save'), '-c']);
    /** @param {RegExp} rule */
    const count = (rule) => {
      const line = saved.split('\n').find((l) => rule.test(l));
      return Number(/^\[(\d+):/.exec(line ?? '')?.[1] ?? 0);
    };
    return {
      blackholed: { up: count(/-A netlab-hole -i lan -o wan -j DROP/), down: count(/-A netlab-hole -i wan -o lan -j DROP/) },
      invalidDropped: { forward: count(/-A FORWARD .*INVALID -j DROP/), input: count(/-A INPUT .*INVALID -j DROP/) },
    };
  }

  /** @returns {Promise<NetworkCounters>} */
  async counters() {
    const [rules, up, down] = await Promise.all([this.#ruleCounters(), this.#impairers?.up.counters(), this.#impairers?.down.counters()]);
    return {
      ...(up && down ? { up, down } : {}),
      blackholed: { up: this.#holeTotals.up + rules.blackholed.up, down: this.#holeTotals.down + rules.blackholed.down },
      invalidDropped: rules.invalidDropped,
    };
  }

  /**
   * The router's conntrack table: on a NAT network, its live mappings (gone once idle past the timeout).
   * @returns {Promise<NatFlow[]>}
   */
  async natFlows() {
    const out = await run(this.#ip, ['netns', 'exec', this.routerNs, tool('conntrack'), '-L']);
    return out.split('\n').filter(Boolean).map((line) => {
      const words = line.trim().split(/\s+/);
      /** @param {string} key @param {number} nth */
      const field = (key, nth) => words.filter((w) => w.startsWith(`${key}=`))[nth]?.slice(key.length + 1) ?? '';
      /** @param {number} nth @returns {FlowTuple} */
      const tuple = (nth) => ({ src: field('src', nth), dst: field('dst', nth), sport: Number(field('sport', nth)), dport: Number(field('dport', nth)) });
      return { proto: words[0] ?? '', timeoutS: Number(words[2]), state: words[0] === 'tcp' ? (words[3] ?? '') : '', orig: tuple(0), reply: tuple(1) };
    });
  }

  /** A NAT forgets every mapping now (a carrier NAT reboots or runs out of ports): later packets of those flows are INVALID, dropped. */
  async dropNatMappings() {
    await run(this.#ip, ['netns', 'exec', this.routerNs, tool('conntrack'), '-F']).catch((err) => {
      // conntrack -F reports how many entries it flushed on stderr, and fails only for real.
      if (!/flow entries have been deleted/.test(String(err))) throw err;
    });
  }

  async stopProcesses() {
    const all = [...this.#children, ...(this.#impairers ? [this.#impairers.up.child, this.#impairers.down.child] : [])];
    await Promise.all(all.map((child) => {
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve(undefined);
        });
        child.kill('SIGTERM');
      });
    }));
  }

  killProcessesSync() {
    for (const child of [...this.#children, ...(this.#impairers ? [this.#impairers.up.child, this.#impairers.down.child] : [])]) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
}
