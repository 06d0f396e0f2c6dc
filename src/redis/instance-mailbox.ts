import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { AppConfig } from '../config/app-config';
import { RedisClient, RedisConnection } from './redis-connection';

/** What a mailbox message is: its first character. */
export type MailKind = 'D' | 'C' | 'P';

/**
 * Every instance's own pub/sub channel, `<prefix>mail:<instanceId>`: what one instance has for
 * another (a delivery for sockets it holds, sessions to close, the watchdog's probe) goes to that
 * instance only, not to a channel every instance reads. On a Cluster it is a sharded channel
 * (SSUBSCRIBE/SPUBLISH): a classic PUBLISH is copied to every node over the cluster bus, a sharded
 * one stays on the master of the channel's slot, and instances' mailboxes spread over the masters
 * by name (no hash tag). A single Redis or Sentinel keeps classic SUBSCRIBE/PUBLISH.
 *
 * Best effort like any pub/sub: a message sent while the link is down is lost. Callers keep their
 * guarantees elsewhere (a delivery is in the device's inbox before it is sent here, and is read
 * again on the next connection); the watchdog's probe detects a subscription that stopped hearing.
 *
 * A message is its kind (one character) followed by its body; embedded mode (no Redis) has no other
 * instance, so sending does nothing there.
 */
@Injectable()
export class InstanceMailbox implements OnApplicationBootstrap {
  private readonly logger = new Logger(InstanceMailbox.name);
  private readonly listeners = new Map<MailKind, (body: string) => void>();
  readonly channel: string;
  private readonly sharded: boolean;

  constructor(
    private readonly redis: RedisConnection,
    private readonly config: AppConfig,
  ) {
    this.channel = this.channelOf(config.instanceId);
    this.sharded = redis.sub instanceof Cluster;
  }

  channelOf(instanceId: string): string {
    return `${this.config.redisPrefix}mail:${instanceId}`;
  }

  /** One listener per kind (the channel: deliveries and closes; the watchdog: probes). */
  on(kind: MailKind, listener: (body: string) => void): void {
    this.listeners.set(kind, listener);
  }

  async onApplicationBootstrap(): Promise<void> {
    const { sub } = this.redis;
    if (!sub) return;
    const receive = (channel: string, message: string) => {
      if (channel !== this.channel) return;
      this.listeners.get(message[0] as MailKind)?.(message.slice(1));
    };
    if (this.sharded) {
      sub.on('smessage', receive);
      await (sub as Cluster).ssubscribe(this.channel);
    } else {
      sub.on('message', receive);
      await sub.subscribe(this.channel);
    }
  }

  /**
   * Sends to one instance's mailbox; resolves true if Redis took it (not that anyone heard it),
   * false if Redis refused or is unreachable (never thrown: callers fire and forget; logged except
   * for probes, whose misses the watchdog counts).
   */
  async send(instanceId: string, kind: MailKind, body: string): Promise<boolean> {
    const pub = this.redis.pub;
    if (!pub) return false;
    try {
      await publish(pub, this.sharded, this.channelOf(instanceId), kind + body);
      return true;
    } catch (err) {
      if (kind !== 'P') this.logger.warn(`mailbox of ${instanceId} (Redis unavailable?): ${(err as Error).message}`);
      return false;
    }
  }
}

function publish(pub: RedisClient, sharded: boolean, channel: string, message: string): Promise<unknown> {
  return sharded ? (pub as Cluster).spublish(channel, message) : pub.publish(channel, message);
}
