import { StoreUnavailableError } from '../common/store-unavailable.error';
import { asStoreError } from './redis-errors';

describe('asStoreError', () => {
  const outcome = (err: Error) => {
    const mapped = asStoreError(err);
    return mapped instanceof StoreUnavailableError ? mapped.outcome : 'passed through';
  };

  it('tells a command that may have run from one that never reached Redis', () => {
    expect(outcome(new Error('Command timed out'))).toBe('unknown');
    expect(outcome(new Error('Connection is closed.'))).toBe('unknown');
    expect(outcome(Object.assign(new Error('Reached the max retries per request limit'), { name: 'MaxRetriesPerRequestError' }))).toBe('unknown');
    expect(outcome(new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe('not_applied');
    expect(outcome(new Error("Cluster isn't ready and enableOfflineQueue options is false"))).toBe('not_applied');
    expect(outcome(new Error('LOADING Redis is loading the dataset in memory'))).toBe('not_applied');
    expect(outcome(new Error('READONLY You can\'t write against a read only replica.'))).toBe('not_applied');
    expect(outcome(new Error('MOVED 3999 127.0.0.1:6381'))).toBe('not_applied');
    expect(outcome(new Error('ASK 3999 127.0.0.1:6381'))).toBe('not_applied');
  });

  it('passes other errors through: they are bugs, not outages', () => {
    expect(outcome(new Error('ERR Error running script: attempt to compare nil with number'))).toBe('passed through');
    expect(outcome(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe('passed through');
  });
});
