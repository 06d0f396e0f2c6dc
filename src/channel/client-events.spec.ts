import { readClientPayload } from './client-events';

describe('client event payloads', () => {
  it('reads heartbeats: nothing, or an object with a positive interval, a network key and an app state', () => {
    expect(readClientPayload('heartbeat', undefined)).toEqual({});
    expect(readClientPayload('heartbeat', null)).toEqual({});
    expect(readClientPayload('heartbeat', { interval: 30_000, network: 'wifi:home', appState: 'background' })).toEqual({
      interval: 30_000,
      network: 'wifi:home',
      appState: 'background',
    });
    expect(readClientPayload('heartbeat', 'x')).toBe('the payload must be a JSON object or null');
    expect(readClientPayload('heartbeat', { interval: 'soon' })).toBe('interval must be a number');
    expect(readClientPayload('heartbeat', { interval: 0 })).toBe('interval must be > 0');
    expect(readClientPayload('heartbeat', { network: 'has space' })).toBe('network must be 1-64 characters of [A-Za-z0-9._:@/+-]');
    expect(readClientPayload('heartbeat', { appState: 'asleep' })).toBe('appState must be one of "foreground", "background"');
  });

  it('reads topic requests', () => {
    expect(readClientPayload('subscribe', { topics: ['a', 'b'] })).toEqual({ topics: ['a', 'b'] });
    expect(readClientPayload('subscribe', 'x')).toBe('the payload must be a JSON object');
    expect(readClientPayload('subscribe', {})).toBe('topics is required');
    expect(readClientPayload('unsubscribe', { topics: [] })).toBe('topics must hold at least 1 item(s)');
    expect(readClientPayload('subscribe', { topics: ['bad topic'] })).toBe('each item of topics must be a topic of 1-128 characters [A-Za-z0-9._:-]');
    expect(readClientPayload('subscribe', { topics: Array.from({ length: 101 }, (_, i) => `t${i}`) })).toBe(
      'topics must hold at most 100 items',
    );
  });

  it('reads token refreshes', () => {
    expect(readClientPayload('auth', { token: 'a.b.c' })).toEqual({ token: 'a.b.c' });
    expect(readClientPayload('auth', undefined)).toBe('the payload must be a JSON object');
    expect(readClientPayload('auth', {})).toBe('token is required');
    expect(readClientPayload('auth', { token: 42 })).toBe('token must be a string');
    expect(readClientPayload('auth', { token: '' })).toBe('token must be at least 1 character(s) long');
  });
});
