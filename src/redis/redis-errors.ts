import { StoreUnavailableError } from '../common/store-unavailable.error';

/** Sent, no answer: the command may have run. */
const UNKNOWN_OUTCOME = new Set(['Command timed out', 'Connection is closed.']);
/** Never sent: the link was down and commands are not queued (enableOfflineQueue: false). */
const NOT_SENT = new Set([
  "Stream isn't writeable and enableOfflineQueue options is false",
  // The Cluster client's form of it: no node holds the key's slot in its map right now (reconnecting, refreshing slots).
  "Cluster isn't ready and enableOfflineQueue options is false",
  'None of startup nodes is available',
]);
/** Redis answered that it cannot serve now (loading, a replica, a failover, a cluster change). */
const REFUSED = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS) /;
/**
 * A Cluster node answered that another node serves the key's slot: the command did not run there.
 * ioredis follows these itself, except in a pipeline whose commands got different answers.
 */
export const REDIRECTED = /^(MOVED|ASK) /;

/**
 * Turns what ioredis rejects with when Redis cannot be reached or does not answer in time into a
 * StoreUnavailableError; anything else (a script bug, a wrong type) is returned as it is, and
 * ends up as a logged 500. ioredis reports most of these as plain Errors, so their messages are
 * what tells them apart; this is the one place that knows them.
 */
export function asStoreError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof StoreUnavailableError) return err;
  if (err.name === 'MaxRetriesPerRequestError' || UNKNOWN_OUTCOME.has(err.message)) {
    return new StoreUnavailableError(`Redis did not answer: ${err.message}`, 'unknown', { cause: err });
  }
  if (NOT_SENT.has(err.message) || err.name === 'ClusterAllFailedError' || REFUSED.test(err.message) || REDIRECTED.test(err.message)) {
    return new StoreUnavailableError(`Redis unavailable: ${err.message}`, 'not_applied', { cause: err });
  }
  return err;
}

/** Runs a Redis call, reporting unavailability as StoreUnavailableError. */
export async function redisCall<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw asStoreError(err);
  }
}
