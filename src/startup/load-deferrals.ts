import { deferDateTimeFormats } from './deferred-date-format';

/**
 * Imported first by main.ts, so that it runs before any framework module loads; main() calls it
 * once every module has loaded (src/startup/deferred-date-format.ts says what waits and why).
 */
export const endLoadDeferrals = deferDateTimeFormats();
