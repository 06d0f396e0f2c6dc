import { deferDateTimeFormats } from './deferred-date-format';

const OPTIONS: Intl.DateTimeFormatOptions = { year: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', day: '2-digit', month: '2-digit' };

/** An `Intl` whose DateTimeFormat counts the real formatters built. */
function countingIntl() {
  const native = Intl.DateTimeFormat;
  let built = 0;
  const counting = function DateTimeFormat(locales?: string | string[], options?: Intl.DateTimeFormatOptions) {
    built++;
    return new native(locales, options);
  } as unknown as typeof Intl.DateTimeFormat;
  Object.defineProperty(counting, 'prototype', { value: native.prototype });
  Object.defineProperty(counting, 'supportedLocalesOf', { value: native.supportedLocalesOf.bind(native) });
  return { intl: { DateTimeFormat: counting }, counting, built: () => built };
}

describe('deferDateTimeFormats', () => {
  it('builds no real formatter until one is used, then formats exactly as the real one', () => {
    const { intl, built } = countingIntl();
    const end = deferDateTimeFormats(intl);
    const formatter = new intl.DateTimeFormat(undefined, OPTIONS);
    const other = new intl.DateTimeFormat('de-DE', { dateStyle: 'full' });
    end();
    expect(built()).toBe(0);

    const at = Date.UTC(2026, 10, 30, 4, 5, 6);
    expect(formatter.format(at)).toBe(new Intl.DateTimeFormat(undefined, OPTIONS).format(at));
    expect(built()).toBe(1);
    expect(formatter.formatToParts(at)).toEqual(new Intl.DateTimeFormat(undefined, OPTIONS).formatToParts(at));
    expect(formatter.resolvedOptions()).toEqual(new Intl.DateTimeFormat(undefined, OPTIONS).resolvedOptions());
    expect(built()).toBe(1); // one real formatter per stand-in, built once
    expect(other.format(at)).toBe(new Intl.DateTimeFormat('de-DE', { dateStyle: 'full' }).format(at));
    expect(built()).toBe(2);
    // The bound `format` getter works detached, as callers pass it around.
    const format = formatter.format;
    expect(format(at)).toBe(formatter.format(at));
  });

  it('gives the real constructor back when it ends, and keeps what callers read from the constructor', () => {
    const { intl, counting } = countingIntl();
    const end = deferDateTimeFormats(intl);
    expect(intl.DateTimeFormat).not.toBe(counting);
    expect(intl.DateTimeFormat.supportedLocalesOf(['en-US'])).toEqual(['en-US']);
    expect(new intl.DateTimeFormat('en-US', { timeZone: 'UTC' }) instanceof Intl.DateTimeFormat).toBe(true);
    end();
    expect(intl.DateTimeFormat).toBe(counting);
    end(); // twice is harmless
    expect(intl.DateTimeFormat).toBe(counting);
  });

  it('leaves a constructor someone else put in place meanwhile', () => {
    const { intl } = countingIntl();
    const end = deferDateTimeFormats(intl);
    const later = Intl.DateTimeFormat;
    intl.DateTimeFormat = later;
    end();
    expect(intl.DateTimeFormat).toBe(later);
  });
});
