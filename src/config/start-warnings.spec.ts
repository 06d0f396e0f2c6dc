import { loadConfig } from './app-config';
import { startWarnings } from './start-warnings';

describe('startWarnings', () => {
  const real = { API_KEYS: 'k'.repeat(16), DEVICE_JWT_SECRET: 's'.repeat(32) };

  it('says when the demo is on and when it hands out the API key', () => {
    const newcomer = startWarnings(loadConfig({}));
    expect(newcomer).toEqual([
      expect.stringMatching(/^the web demo is ON at http:\/\/0\.0\.0\.0:3000\/demo: anyone who can reach it can mint device tokens/),
      'the web demo HANDS OUT THE API KEY (generated for this run) to anyone who opens http://0.0.0.0:3000/demo.',
    ]);
    expect(startWarnings(loadConfig({ ...real, HOST: '127.0.0.1', DEMO_SHARE_API_KEY: 'true' }))[1]).toContain('(DEMO_SHARE_API_KEY=true)');
  });

  it('is quiet for a deployment that hands nothing out', () => {
    expect(startWarnings(loadConfig(real))).toEqual([]);
    expect(startWarnings(loadConfig({ ...real, NODE_ENV: 'production', OPS_TOKEN: 'o'.repeat(16) }))).toEqual([]);
  });

  it('says when production leaves the ops endpoints open', () => {
    expect(startWarnings(loadConfig({ ...real, NODE_ENV: 'production' }))).toEqual([expect.stringMatching(/^OPS_TOKEN is not set/)]);
  });
});
