import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { DeviceChannel } from '../channel/device-channel';
import { SessionSweeper } from '../gateway/session-sweeper.service';
import { PresenceStore } from '../presence/presence.store';
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
    const checks: Record<string, Check> = { store: await this.checkStore(), sweeper: this.checkSweeper() };
    if (this.config.redis) checks.pubsub = { status: this.watchdog.pubSubHealthy ? 'up' : 'down' };
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

  private checkSweeper(): Check {
    return { status: this.sweeper.isHealthy(this.clock.now(), this.startedAt) ? 'up' : 'down' };
  }
}
