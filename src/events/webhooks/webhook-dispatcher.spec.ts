import { Webhook } from 'standardwebhooks';
import { FakeClock } from '../../../test/support/fake-clock';
import { MetricsService } from '../../metrics/metrics.service';
import { EventEnvelope } from '../event.types';
import { MemoryEventLog } from '../memory-event-log';
import { KeyLayout } from '../../redis/partitions';
import { SoleLeases } from '../../redis/partition-leases';
import { MemoryWebhookQueue } from './memory-webhook-queue';
import { WebhookDispatcher } from './webhook-dispatcher';
import { AttemptResult, WebhookSender } from './webhook-sender';

const SECRET = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
const URL_ = 'http://receiver.test/hooks';
const HOUR = 3_600_000;

/** Answers each POST as `answer` says, after checking its signature with the library; keeps what it saw. */
class ScriptedSender extends WebhookSender {
  readonly seen: { event: EventEnvelope; status: number }[] = [];
  constructor(private readonly answer: (event: EventEnvelope, attempt: number) => AttemptResult) {
    super(1);
  }
  override async post(_url: URL, headers: Record<string, string>, body: string): Promise<AttemptResult> {
    // verify() also checks the timestamp against the real clock; this test's clock is fake, so compare the signature itself.
    const signature = new Webhook(SECRET).sign(headers['webhook-id']!, new Date(Number(headers['webhook-timestamp']) * 1000), body);
    if (headers['webhook-signature'] !== signature) throw new Error(`bad signature for ${body}`);
    const event = JSON.parse(body) as EventEnvelope;
    expect(event.id).toBe(headers['webhook-id']);
    const result = this.answer(event, this.seen.filter((s) => s.event.id === event.id).length + 1);
    this.seen.push({ event, status: result.status ?? 0 });
    return result;
  }
  attempts(deviceId: string): string[] {
    return this.seen.filter((s) => s.event.data.deviceId === deviceId).map((s) => `${String(s.event.data.n)}:${s.status}`);
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The dispatcher's policy on the embedded queue, with the clock moved by hand: retries in ms instead of minutes. */
describe('WebhookDispatcher', () => {
  let clock: FakeClock;
  let log: MemoryEventLog;
  let metrics: MetricsService;
  let dispatcher: WebhookDispatcher | undefined;
  let queue: MemoryWebhookQueue;
  const emit = (deviceId: string, n: number) => log.append('notification.expired', clock.now(), { deviceId, n, notificationId: `x${n}`, userId: null, reason: 'offline' });
  const start = async (sender: ScriptedSender, retryWindowMs = 24 * HOUR) => {
    dispatcher = new WebhookDispatcher(
      {
        url: URL_,
        label: URL_,
        owner: 'test',
        secret: SECRET,
        matches: () => true,
        retryWindowMs,
        timeoutMs: 1_000,
        concurrency: 8,
        timings: { claimLeaseMs: 600, idlePollMs: 5, intakePollMs: 5, backlogEveryMs: 50 },
      },
      queue,
      log,
      new SoleLeases(new KeyLayout('test:', false)),
      sender,
      metrics,
      clock,
      () => 0.5,
      (listener) => log.onAppend(listener),
    );
    await dispatcher.start();
  };

  beforeEach(() => {
    clock = new FakeClock();
    log = new MemoryEventLog(24 * HOUR);
    metrics = new MetricsService();
    queue = new MemoryWebhookQueue();
  });
  afterEach(async () => {
    await dispatcher?.stop(100);
    await dispatcher?.stopped();
    dispatcher = undefined;
  });

  it("honours Retry-After for the failing device only; its next event waits behind it, the others' do not", async () => {
    const sender = new ScriptedSender((e, attempt) => (e.data.deviceId === 'a' && e.data.n === 1 && attempt === 1 ? { status: 503, retryAfter: '30' } : { status: 204 }));
    await start(sender);
    emit('a', 1);
    emit('a', 2);
    emit('b', 1);
    emit('b', 2);
    await until(() => sender.attempts('b').length === 2);
    // Settled before the clock jumps past every claim's lease (which would make another attempt of a claim in flight).
    await until(() => dispatcher!.idle);
    expect(sender.attempts('a')).toEqual(['1:503']);
    clock.advance(29_999);
    emit('c', 1); // delivered: proof that the loop ran at the new time
    await until(() => sender.attempts('c').length === 1);
    await until(() => dispatcher!.idle);
    expect(sender.attempts('a')).toEqual(['1:503']);
    clock.advance(1);
    await until(() => sender.attempts('a').length === 3);
    expect(sender.attempts('a')).toEqual(['1:503', '1:204', '2:204']);
    expect(sender.attempts('b')).toEqual(['1:204', '2:204']);
  });

  it('backs off with jitter between 1 s and a doubling ceiling, and drops after the window, letting the next event go', async () => {
    const sender = new ScriptedSender((e) => (e.data.n === 1 ? { status: 500 } : { status: 200 }));
    await start(sender, 10_000);
    emit('a', 1);
    emit('a', 2);
    await until(() => sender.attempts('a').length === 1);
    await until(() => dispatcher!.idle);
    // random 0.5: 1st retry after 1 + 0.5 x (2 - 1) = 1.5 s, 2nd after 1 + 0.5 x (4 - 1) = 2.5 s.
    for (const [wait, attempts] of [
      [1_499, 1],
      [1, 2],
      [2_499, 2],
      [1, 3],
    ] as const) {
      clock.advance(wait);
      emit('probe', clock.now());
      await until(() => sender.attempts('probe').length > 0 && sender.seen.at(-1)!.event.data.n === clock.now());
      await until(() => sender.attempts('a').length >= attempts);
      await until(() => dispatcher!.idle);
      expect(sender.attempts('a')).toHaveLength(attempts);
    }
    // The window ends 10 s after the event: the last attempt at its end, then the drop.
    clock.advance(10_000);
    await until(() => sender.attempts('a').includes('2:200'));
    expect(sender.attempts('a').filter((a) => a === '1:500').length).toBeGreaterThanOrEqual(4);
    expect(await metrics.webhooksDropped.get()).toMatchObject({ values: [{ value: 1, labels: { url: URL_ } }] });
    expect((await metrics.webhookFailures.get()).values.find((v) => v.labels.reason === '500')?.value).toBeGreaterThanOrEqual(4);
  });

  it('a 410 stops the URL: nothing more is sent, and the event stays for the next start', async () => {
    const sender = new ScriptedSender(() => ({ status: 410 }));
    await start(sender);
    emit('a', 1);
    await until(() => sender.seen.length === 1);
    const disabled = async () => (await metrics.webhookDisabled.get()).values[0]?.value;
    for (let i = 0; i < 500 && (await disabled()) !== 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await disabled()).toBe(1);
    emit('b', 1);
    clock.advance(60_000);
    // Disabled: nothing is claimed whatever is due; the mark is the queue's, for every instance.
    await new Promise((r) => setTimeout(r, 100));
    expect(await queue.isDisabled()).toBe(true);
    expect(sender.seen).toHaveLength(1);
  });
});
