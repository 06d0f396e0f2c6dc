import globalTeardown from './global-teardown';

export default function clusterGlobalTeardown(): void {
  for (const pid of (process.env.TEST_REDIS_CLUSTER_PIDS ?? '').split(',').filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  globalTeardown();
}
