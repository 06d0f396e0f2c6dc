import jwt from 'jsonwebtoken';
import { loadConfig } from '../config/app-config';
import { reachableUrl, startBanner, startSummary } from './start-banner';

describe('the start block', () => {
  it('hands a newcomer the address, the demo, the generated credentials, a demo-device token and a curl', () => {
    const config = loadConfig({ HOST: '0.0.0.0', INSTANCE_ID: 'gw-test' });
    const text = startBanner(config, 3000);
    expect(text).toContain('push-gateway gw-test is listening on http://localhost:3000 (bound to 0.0.0.0:3000), on the embedded store');
    expect(text).toContain('demo page:  http://localhost:3000/demo  (connects as device demo-device');
    expect(text).toContain(`API_KEYS=${config.generated.API_KEYS}`);
    const [, token] = /demo device token[^\n]*\n\s+(\S+)/.exec(text)!;
    expect(jwt.verify(token!, config.generated.DEVICE_JWT_SECRET!)).toMatchObject({ sub: 'demo-user', deviceId: 'demo-device' });
    expect(text).toContain(`curl -s -w '\\n' -X POST http://localhost:3000/v1/notifications -H 'Authorization: Bearer ${config.generated.API_KEYS}'`);
    expect(text).toContain(`-d '{"deviceIds":["demo-device"],"title":"Hello","data":{"from":"curl"}}'`);
  });

  it('never prints a configured key: the curl says $API_KEY', () => {
    const config = loadConfig({ HOST: '127.0.0.1', API_KEYS: 'real-key-0123456789abcdef', DEVICE_JWT_SECRET: 's'.repeat(40) });
    const text = startBanner(config, 3001);
    expect(text).not.toContain('real-key');
    expect(text).not.toContain('generated for this run');
    expect(text).toContain('"Authorization: Bearer $API_KEY"');
  });

  it('names the Redis it runs on without its password, and reaches IPv6 binds in brackets', () => {
    const config = loadConfig({ REDIS_URL: 'redis://:pw@10.0.0.5:6380/2', API_KEYS: 'real-key-0123456789abcdef', DEVICE_JWT_SECRET: 's'.repeat(40), NODE_ENV: 'production' });
    expect(startSummary(config, 3000)).toMatch(/listening on http:\/\/localhost:3000 \(bound to 0\.0\.0\.0:3000\), on Redis at redis:\/\/:\*\*\*@10\.0\.0\.5:6380\/2 \(REDIS_URL\)$/);
    expect(reachableUrl('::1', 80)).toBe('http://[::1]:80');
  });
});
