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
        try {
          // Its record's expiry is not known here at first (the main process connected it): the first
          // heartbeat of each device checks the record, the next ones do not (as SessionService's).
          const ok = await store.heartbeat(pop.heartbeatUpdate(i, now));
          if (ok) count++;
          else refused++;
          latency.add(Date.now() - now);
        } catch {
          pop.forget(i);
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
