import { FakeClock } from '../../test/support/fake-clock';
import { MetricsService } from '../metrics/metrics.service';
import { NotificationStore } from '../notifications/notification.store';
import { FallbackJob, FallbackResult } from '../notifications/notification.types';
import { FallbackService } from './fallback.service';
import { PushMessage, PushOutcome, PushProviderName, PushRegistration, PushSender } from './push.types';

/** A scripted provider side: answers each push by the token's prefix, and counts what runs at once. */
class ScriptedSender extends PushSender {
  readonly sent: { registration: PushRegistration; message: PushMessage }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  enabled(): boolean {
    return true;
  }
  async send(registration: PushRegistration, message: PushMessage): Promise<PushOutcome> {
    this.sent.push({ registration, message });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    const provider: PushProviderName = registration.provider;
    const token = 'token' in registration ? registration.token : '';
    if (token.startsWith('gone')) return { status: 'failed', provider, reason: 'gone' };
    if (token.startsWith('throw')) throw new Error('a sender that broke its contract');
    return { status: 'sent', provider };
  }
}

describe('FallbackService', () => {
  const clock = new FakeClock();
  const fcm = (token: string) => JSON.stringify({ provider: 'fcm', token });
  const job = (targets: FallbackJob['targets'], expiresAt?: number): FallbackJob => ({
    key: 'p|n1|1|o',
    trigger: 'offline',
    notification: { payload: { id: 'n1', data: {}, createdAt: clock.now(), expiresAt }, bytes: 10 },
    targets,
  });
  let recorded: { key: string; results: readonly FallbackResult[]; done: boolean }[];
  let store: NotificationStore;
  let sender: ScriptedSender;
  let metrics: MetricsService;
  let service: FallbackService;

  beforeEach(() => {
    recorded = [];
    store = {
      recordFallback: async (key: string, results: readonly FallbackResult[], done: boolean) => void recorded.push({ key, results, done }),
      renewFallback: async () => undefined,
    } as unknown as NotificationStore;
    sender = new ScriptedSender();
    metrics = new MetricsService();
    service = new FallbackService(store, sender, clock, metrics);
  });

  it('pushes each target with a registration, records no_target for the others and gone with the registration used, then releases the job', async () => {
    service.send([job([{ deviceId: 'a', registration: fcm('ok-a') }, { deviceId: 'b' }, { deviceId: 'c', registration: fcm('gone-c') }, { deviceId: 'd', registration: fcm('throw-d') }], clock.now() + 30_500)]);
    await service.idle();
    expect(sender.sent.map((s) => s.message.ttlSeconds)).toEqual([31, 31, 31]); // what is left of the ttl, rounded up
    expect(recorded).toEqual([
      {
        key: 'p|n1|1|o',
        done: true,
        results: [
          { deviceId: 'a', status: 'sent', provider: 'fcm', at: clock.now(), registration: fcm('ok-a') },
          { deviceId: 'b', status: 'no_target', at: clock.now() },
          { deviceId: 'c', status: 'failed', provider: 'fcm', reason: 'gone', at: clock.now(), registration: fcm('gone-c') },
          { deviceId: 'd', status: 'failed', provider: 'fcm', reason: 'unavailable', at: clock.now(), registration: fcm('throw-d') },
        ],
      },
    ]);
    const count = async (labels: Record<string, string>) => (await metrics.pushFallbacks.get()).values.find((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))?.value;
    expect(await count({ trigger: 'offline', provider: 'none', status: 'no_target' })).toBe(1);
    expect(await count({ trigger: 'offline', provider: 'fcm', status: 'failed', reason: 'gone' })).toBe(1);
  });

  it('sends a ttl-0 notification as now-or-never, keeps a bounded number of pushes of one job in flight, and never starts a job twice', async () => {
    const many = Array.from({ length: 100 }, (_, i) => ({ deviceId: `d${i}`, registration: fcm(`ok-${i}`) }));
    service.send([job(many)]);
    service.send([job(many)]); // the same job claimed again while this instance works on it
    await service.idle();
    expect(sender.sent).toHaveLength(100);
    expect(sender.sent.every((s) => s.message.ttlSeconds === 0)).toBe(true);
    expect(sender.maxInFlight).toBeLessThanOrEqual(32);
    expect(sender.maxInFlight).toBeGreaterThan(1);
    expect(recorded).toHaveLength(1);
  });
});
