import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { luaScript, BoundScript } from '../redis/lua-script';
import type { RedisClient } from '../redis/redis-connection';
import { KeyLayout } from '../redis/partitions';
import { redisCall } from '../redis/redis-errors';
import { PushRegistration } from './push.types';

/**
 * A device's native push registration, kept with its device record (at most one; a new one
 * replaces it) for as long as the device is known: in Redis the fields `push` (the registration
 * as JSON) and `pushProvider` of the device hash (`device:<deviceId>` in the device's partition), which expires with the device; in
 * the embedded store beside the device in MemoryPresenceStore. The notification store reads the
 * registration when it hands out a native push, and deletes it when a provider says it is gone.
 */
export abstract class PushRegistrationStore {
  /** False when the device is not known (it never connected, or was forgotten). */
  abstract register(deviceId: string, registration: PushRegistration, now: number): Promise<boolean>;

  abstract unregister(deviceId: string): Promise<void>;
}

/** Writes only into a device record that exists, so a registration never resurrects a forgotten device. */
const REGISTER = luaScript({
  name: 'pgRegisterPush',
  keys: ['device'],
  args: { registration: 'string', provider: 'string' },
  body: `
if redis.call('HEXISTS', deviceKey, 'userId') == 0 then return 0 end
redis.call('HSET', deviceKey, 'push', registration, 'pushProvider', provider)
return 1
`,
});

export class RedisPushRegistrationStore extends PushRegistrationStore {
  private readonly registerScript: BoundScript<typeof REGISTER>;

  private readonly keys: KeyLayout;

  /** `keys`: the key layout, or a plain prefix (one partition, as on a single Redis). */
  constructor(
    private readonly redis: RedisClient,
    keys: KeyLayout | string,
  ) {
    super();
    this.keys = typeof keys === 'string' ? new KeyLayout(keys, false) : keys;
    this.registerScript = REGISTER.bind(redis);
  }

  async register(deviceId: string, registration: PushRegistration, _now?: number): Promise<boolean> {
    const done = await this.registerScript({ keys: { device: this.deviceKey(deviceId) }, args: { registration: JSON.stringify(registration), provider: registration.provider } });
    return done === 1;
  }

  async unregister(deviceId: string): Promise<void> {
    await redisCall(this.redis.hdel(this.deviceKey(deviceId), 'push', 'pushProvider'));
  }

  private deviceKey(deviceId: string): string {
    return `${this.keys.of(deviceId)}device:${deviceId}`;
  }
}

export class MemoryPushRegistrationStore extends PushRegistrationStore {
  constructor(private readonly presence: MemoryPresenceStore) {
    super();
  }

  async register(deviceId: string, registration: PushRegistration, now: number): Promise<boolean> {
    return this.presence.setPushRegistration(deviceId, JSON.stringify(registration), now);
  }

  async unregister(deviceId: string): Promise<void> {
    this.presence.deletePushRegistration(deviceId);
  }
}
