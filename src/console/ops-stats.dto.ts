import { ApiProperty, ApiPropertyOptional } from '../docs/openapi-decorators';

export class StatsPointDto {
  @ApiProperty({ description: 'epoch ms at the end of this interval' }) at!: number;
  @ApiProperty({ description: 'heartbeats handled per second (every result)' }) heartbeatsPerSecond!: number;
  @ApiProperty({ description: 'notifications emitted to device sockets per second' }) pushesPerSecond!: number;
  @ApiProperty({ description: 'notifications acked by devices per second' }) acksPerSecond!: number;
  @ApiProperty({ description: 'sessions the sweeper retired because their presence ran out' }) expired!: number;
  @ApiProperty({ description: 'sweeps that finished' }) sweeps!: number;
  @ApiPropertyOptional({ description: 'their mean duration, ms' }) sweepMeanMs?: number;
  @ApiProperty({ description: 'devices with a live socket on this instance' }) connected!: number;
}

export class StatsTotalsDto {
  @ApiProperty() heartbeats!: number;
  @ApiProperty() pushesSent!: number;
  @ApiProperty() pushesAcked!: number;
  @ApiProperty() pushesUnacked!: number;
  @ApiProperty() presenceExpired!: number;
  @ApiProperty() sweeps!: number;
  @ApiProperty() connected!: number;
}

export class SweepBucketDto {
  @ApiProperty({ type: Number, nullable: true, description: 'upper bound in ms; null for +Inf' }) leMs!: number | null;
  @ApiProperty({ description: 'sweeps at most that long (cumulative, as Prometheus buckets)' }) count!: number;
}

export class SweepStatsDto {
  @ApiProperty({ description: 'SWEEP_INTERVAL_MS' }) intervalMs!: number;
  @ApiProperty() count!: number;
  @ApiPropertyOptional() meanMs?: number;
  @ApiProperty({ type: [SweepBucketDto] }) buckets!: SweepBucketDto[];
}

export class PresenceBoundDto {
  @ApiProperty({ description: 'HEARTBEAT_INTERVAL_MS, the interval a new session starts with' }) heartbeatIntervalMs!: number;
  @ApiProperty({ description: 'presence ttl = ceil(ttlFactor x interval) + ttlSlackMs' }) ttlFactor!: number;
  @ApiProperty({ description: 'HEARTBEAT_TTL_SLACK_MS' }) ttlSlackMs!: number;
  @ApiProperty({ description: 'ttl at heartbeatIntervalMs' }) ttlMs!: number;
  @ApiProperty({ description: 'a device that died is offline at most this long after its last heartbeat (ttl + SWEEP_INTERVAL_MS)' })
  offlineBoundMs!: number;
}

export class OpsStatsDto {
  @ApiProperty({ description: 'the instance that answered: rates and totals are its own' }) instanceId!: string;
  @ApiProperty({ enum: ['api_key', 'ops_token'], description: 'the credential the request was let in with' }) credential!: string;
  @ApiProperty({ description: 'epoch ms' }) now!: number;
  @ApiProperty() sampleIntervalMs!: number;
  @ApiProperty({ type: [StatsPointDto], description: 'oldest first, up to the last five minutes' }) points!: StatsPointDto[];
  @ApiProperty({ type: StatsTotalsDto, description: 'the counters since this instance started' }) totals!: StatsTotalsDto;
  @ApiProperty({ type: SweepStatsDto }) sweeps!: SweepStatsDto;
  @ApiProperty({ type: PresenceBoundDto }) presence!: PresenceBoundDto;
}
