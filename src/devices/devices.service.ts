import { Injectable } from '@nestjs/common';
import { DeviceChannel } from '../channel/device-channel';
import { Clock } from '../common/clock';
import { ID } from '../common/patterns';
import { MAX_LISTED_NETWORKS, NetworkStats, statsOf } from '../presence/network-intervals';
import { PresenceStore } from '../presence/presence.store';
import { DeviceView, InstanceView } from '../presence/presence.types';

export interface PresenceSummary {
  online: number;
  instances: InstanceView[];
  networks: NetworkStats[];
}

/** What backends may ask about devices, and the operator's disconnect. */
@Injectable()
export class DevicesService {
  constructor(
    private readonly store: PresenceStore,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
  ) {}

  /** The device, or null when it was never seen or is forgotten (or the id is not an id: never seen). */
  async device(deviceId: string): Promise<DeviceView | null> {
    if (!ID.test(deviceId)) return null;
    const [view] = await this.store.getDevices([deviceId], this.clock.now());
    return view ?? null;
  }

  userDevices(userId: string): Promise<DeviceView[]> {
    return this.store.listUserDevices(userId, this.clock.now());
  }

  async summary(): Promise<PresenceSummary> {
    const now = this.clock.now();
    const [online, instances, networks] = await Promise.all([
      this.store.countOnline(now),
      this.store.listInstances(now),
      this.store.listNetworks(now, MAX_LISTED_NETWORKS),
    ]);
    return { online, instances, networks: networks.map((n) => statsOf(n.network, n.histogram)) };
  }

  /**
   * Ends the device's session: offline at once, and its socket closed wherever it is (the client
   * is told not to reconnect by itself). False when the device is not online.
   */
  async kick(deviceId: string): Promise<boolean> {
    if (!ID.test(deviceId)) return false;
    const now = this.clock.now();
    const [view] = await this.store.getDevices([deviceId], now);
    if (!view?.online || !view.sessionId || !view.instanceId) return false;
    const session = { deviceId, sessionId: view.sessionId, userId: view.userId, instanceId: view.instanceId };
    await this.store.disconnect([session], now, 'kicked');
    this.channel.close([session], 'kicked');
    return true;
  }
}
