import { createPublicKey } from 'node:crypto';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const DURATION_UNITS_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Reads typed values from the environment and collects every problem before failing. */
export class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  string(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value ? value : undefined;
  }

  list(name: string): string[] | undefined {
    return this.string(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  /** A comma-separated list of host:port. */
  hostList(name: string): { host: string; port: number }[] | undefined {
    const items = this.list(name);
    if (!items?.length) return undefined;
    return items.map((item) => {
      const match = /^([^:\s]+):(\d{1,5})$/.exec(item);
      if (!match) this.fail(name, `must be a comma-separated list of host:port, got "${item}"`);
      return { host: match?.[1] ?? '', port: Number(match?.[2] ?? 0) };
    });
  }

  bool(name: string, fallback: boolean): boolean {
    const raw = this.string(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    this.fail(name, `must be true or false, got "${raw}"`);
    return fallback;
  }

  int(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) {
      this.fail(name, `must be a whole number, got "${raw}"`);
      return fallback;
    }
    const value = Number(raw);
    if (range.min !== undefined && value < range.min) this.fail(name, `must be >= ${range.min}, got ${value}`);
    if (range.max !== undefined && value > range.max) this.fail(name, `must be <= ${range.max}, got ${value}`);
    return value;
  }

  /**
   * A duration as ms: whole seconds ("3600") or a whole number with a unit ("90s", "15m", "24h",
   * "7d"). Unset and "0" are undefined (the setting is off).
   */
  duration(name: string, range: { minMs?: number; maxMs?: number } = {}): number | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    const match = /^(\d+)\s*([smhd]?)$/.exec(raw);
    if (!match) {
      this.fail(name, `must be whole seconds or a number with a unit s, m, h or d (like 24h), got "${raw}"`);
      return undefined;
    }
    const ms = Number(match[1]) * DURATION_UNITS_MS[(match[2] || 's') as keyof typeof DURATION_UNITS_MS];
    if (ms === 0) return undefined;
    if (range.minMs !== undefined && ms < range.minMs) this.fail(name, `must be at least ${range.minMs / 1000} s, got "${raw}"`);
    if (range.maxMs !== undefined && ms > range.maxMs) this.fail(name, `must be at most ${range.maxMs / 1000} s, got "${raw}"`);
    return ms;
  }

  /** The one JWT algorithm a PEM public key can verify: RS256 for RSA, ES256 for P-256. */
  publicKeyAlgorithm(name: string, pem: string): 'RS256' | 'ES256' | undefined {
    try {
      const key = createPublicKey(pem.replace(/\\n/g, '\n'));
      if (key.asymmetricKeyType === 'rsa') return 'RS256';
      if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
      this.fail(name, `must be an RSA or P-256 EC public key, got ${key.asymmetricKeyType ?? 'unknown'}`);
    } catch {
      this.fail(name, 'is not a PEM public key');
    }
    return undefined;
  }

  fail(name: string, reason: string): void {
    this.problems.push(`${name} ${reason}`);
  }

  throwIfFailed(): void {
    if (this.problems.length) throw new ConfigError(this.problems);
  }
}
