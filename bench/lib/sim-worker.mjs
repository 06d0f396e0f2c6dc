// One load process of the simulation's maximum-throughput phase (forked by bench/simulate.mjs):
// heartbeats of its slice of the devices as fast as Redis answers them, `concurrency` in flight,
// through its own RedisConnection and RedisPresenceStore, like one more gateway process.
import { dist, Population, Reservoir } from './sim-load.mjs';

const { loadConfig } = dist('config/app-config.js');
const { RedisConnection } = dist('redis/redis-connection.js');
const { createRedisPresenceStore } = dist('presence/presence.module.js');
const { HeartbeatPolicy } = dist('presence/heartbeat-policy.js');

process.once('message', async (job) => {
  const config = loadConfig(job.env);
  const redis = new RedisConnection(config);
  try {
    await redis.connect();
    const store = createRedisPresenceStore(config, redis);
    const pop = new Population({ ...job.population, policy: new HeartbeatPolicy(config.heartbeat, config.heartbeatTtlSlackMs) });
    pop.gen.set(job.gens);
    const latency = new Reservoir(20_000);
    let count = 0;
    let refused = 0;
    let errors = 0;
    let next = job.from;
    const end = performance.now() + job.durationMs;
    const lane = async () => {
      while (performance.now() < end) {
        const i = next;
        next = next + 1 >= job.to ? job.from : next + 1;
        const now = Date.now();
        const interval = pop.interval(i);
        try {
          const ok = await store.heartbeat({
            deviceId: pop.deviceId(i), sessionId: pop.sessionId(i), instanceId: pop.instanceId(i), now, grace: 0,
            interval, ttl: pop.policy.ttlFor(interval), network: pop.network(i),
            // Written by the device's connect, as SessionService passes them.
            recordedInterval: interval, recordedNetwork: pop.network(i),
          });
          if (ok) count++;
          else refused++;
          latency.add(Date.now() - now);
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: job.concurrency }, lane));
    process.send({ count, refused, errors, latency: latency.summary() });
  } catch (err) {
    process.send({ error: err.message });
  } finally {
    await redis.onApplicationShutdown();
    process.disconnect();
  }
});
