import { Injectable, OnModuleInit } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { MAX_LISTED_NETWORKS, NetworkStats, statsOf } from './network-intervals';
import { NetworkLabeler } from './network-label';
import { PresenceStore } from './presence.store';

/**
 * Publishes what smart heartbeats learned per network, read from the store at each scrape. Series
 * are labelled by NetworkLabeler (kind + keyed hash): network keys name people's home Wi-Fi.
 */
@Injectable()
export class NetworkMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly store: PresenceStore,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    // Both gauges are collected in the same scrape: one store read serves both.
    let cached: { at: number; stats: Promise<NetworkStats[]> } | undefined;
    const labeler = NetworkLabeler.forConfig(this.config);
    const read = () => {
      const now = this.clock.now();
      if (!cached || now - cached.at > 1_000) {
        const stats = this.store
          .listNetworks(now, MAX_LISTED_NETWORKS)
          .then((all) => all.map((n) => statsOf(labeler.label(n.network), n.histogram)));
        cached = { at: now, stats };
      }
      return cached.stats;
    };
    new Gauge({
      name: 'push_gateway_network_recommended_interval_ms',
      help: `Starting heartbeat interval recommended per network (kind:hash of the key; lower quartile of stable intervals; ${MAX_LISTED_NETWORKS} most recent networks)`,
      labelNames: ['network'] as const,
      registers: [this.metrics.registry],
      async collect() {
        this.reset();
        for (const n of await read().catch(() => [])) {
          if (n.recommendedInterval !== undefined) this.set({ network: n.network }, n.recommendedInterval);
        }
      },
    });
    new Gauge({
      name: 'push_gateway_network_interval_samples',
      help: 'Stable-interval samples collected per network (7 days); network = kind:hash of the key',
      labelNames: ['network'] as const,
      registers: [this.metrics.registry],
      async collect() {
        this.reset();
        for (const n of await read().catch(() => [])) this.set({ network: n.network }, n.samples);
      },
    });
  }
}
