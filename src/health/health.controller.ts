import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '../docs/openapi-decorators';
import { Cluster } from 'ioredis';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { DeviceChannel } from '../channel/device-channel';
import { SessionSweeper } from '../gateway/session-sweeper.service';
import { PresenceStore } from '../presence/presence.store';
import { RedisConnection } from '../redis/redis-connection';
import { RedisWatchdog } from '../redis/redis-watchdog.service';

type Check = { status: 'up' | 'down'; [detail: string]: unknown };

@ApiTags('health')
@Controller('health')
export class HealthController {
  private readonly startedAt: number;

  constructor(
    private readonly store: PresenceStore,
    private readonly sweeper: SessionSweeper,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly watchdog: RedisWatchdog,
    private readonly channel: DeviceChannel,
    private readonly redis: RedisConnection,
  ) {
    this.startedAt = clock.now();
  }

  @Get('live')
  @HttpCode(200)
  @ApiOperation({ summary: 'The process is up' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({ summary: 'The presence store answers a write and a read, and the sweeper runs' })
  @ApiResponse({ status: 200, description: 'Ready' })
  @ApiResponse({ status: 503, description: 'Not ready; body says which check failed' })
  async ready(): Promise<{ status: 'ok'; checks: Record<string, Check> }> {
    const [store, masters] = await Promise.all([this.checkStore(), this.checkMasters()]);
    const checks: Record<string, Check> = { store, sweeper: this.checkSweeper() };
    if (masters) checks.masters = masters;
    if (this.config.redis) {
      const problem = this.watchdog.pubSubProblem;
      checks.pubsub = problem === undefined ? { status: 'up' } : { status: 'down', reason: problem };
    }
    if (this.channel.isDraining) checks.drain = { status: 'down', reason: 'instance is shutting down' };
    if (Object.values(checks).some((c) => c.status === 'down')) {
      throw new ServiceUnavailableException({ message: 'not ready', checks });
    }
    return { status: 'ok', checks };
  }

  private async checkStore(): Promise<Check> {
    const started = performance.now();
    const timeoutMs = this.config.redisCommandTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.store.ping(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
      ]);
      return { status: 'up', kind: this.config.redis ? 'redis' : 'memory', mode: this.config.redis?.mode, latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      return { status: 'down', error: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * On a Cluster the store check's write and read land on one master (the control slot), while
   * devices spread over all of them: every master must answer a PING within the command timeout.
   * One that does not makes the instance unready, which is right when only this instance cannot
   * reach it (a partition: others serve its devices). When a master is down for everyone the whole
   * fleet goes unready, but then the Cluster itself refuses every command after its node timeout
   * (cluster-require-full-coverage, the default) unless a replica took over, so nothing is lost by
   * saying so sooner.
   */
  private async checkMasters(): Promise<Check | undefined> {
    const client = this.redis.client;
    if (!(client instanceof Cluster)) return undefined;
    const masters = client.nodes('master');
    const timeoutMs = this.config.redisCommandTimeoutMs;
    const down: string[] = [];
    await Promise.all(
      masters.map(async (node) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([node.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)))]);
        } catch {
          down.push(`${node.options.host}:${node.options.port}`);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const status = masters.length > 0 && down.length === 0 ? 'up' : 'down';
    return { status, total: masters.length, ...(down.length ? { down: down.sort() } : {}) };
  }

  private checkSweeper(): Check {
    return { status: this.sweeper.isHealthy(this.clock.now(), this.startedAt) ? 'up' : 'down' };
  }
}
