import { api, waitFor } from './app';
import { freePort } from './find-redis';
import { GatewayProcess, spawnGateway } from './process';
import { TEST_API_KEY, TEST_JWT_SECRET } from './tokens';

export interface RunningGateway {
  process: GatewayProcess;
  url: string;
  instanceId: string;
}

/** Starts one built gateway process on a free loopback port and waits until it is ready. */
export async function startGateway(instanceId: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<RunningGateway> {
  const port = await freePort();
  const process = spawnGateway({
    PORT: String(port),
    API_KEYS: TEST_API_KEY,
    DEVICE_JWT_SECRET: TEST_JWT_SECRET,
    INSTANCE_ID: instanceId,
    HEARTBEAT_INTERVAL_MS: '400',
    HEARTBEAT_MIN_MS: '200',
    SWEEP_INTERVAL_MS: '100',
    REDIS_PROBE_INTERVAL_MS: '200',
    SHUTDOWN_GRACE_MS: '5000',
    LOAD_SHED_DELAY_MS: '0', // other suites load the machine; test/overload.e2e-spec.ts turns it on
    REST_QUEUE_TARGET_MS: '0', // the same: under the suite's load every request may take 400 ms
    HEARTBEAT_TTL_SLACK_MS: '0', // exact TTLs (2.5 intervals) for policy tests; the lab tests run with the default
    ...env,
  }, nodeArgs);
  const url = `http://127.0.0.1:${port}`;
  // 30 s: a gateway on the test Cluster starts in 1-3 s, but the full suite loads this machine
  // (load average about 9 on 2 cores). One that never gets ready is killed: left running, it
  // would load the rest of the run.
  await waitFor(async () => (await fetch(`${url}/health/ready`).catch(() => null))?.ok ?? false, 30_000, 50).catch((err: Error) => {
    process.child.kill('SIGKILL');
    throw new Error(`${instanceId} did not become ready: ${err.message}\n${process.output()}`);
  });
  return { process, url, instanceId };
}

export async function getJson<T = any>(url: string, path: string): Promise<T> {
  return (await (await api(url, path)).json()) as T;
}
