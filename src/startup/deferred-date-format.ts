type DateTimeFormatConstructor = typeof Intl.DateTimeFormat;

/**
 * Lets the `Intl.DateTimeFormat`s that modules build while they load wait until they first format.
 * `@nestjs/common` builds two when it loads (its loggers' timestamp formatters), and the first
 * one brings in ICU: locale, calendar and time zone data, about 11 MB of the process's RSS (5 MB of
 * the Node binary's pages, 6 MB of ICU's own heap; `node dist/main.js`, 3 s after ready: 114 -> 103
 * MB). A gateway that logs nothing below `warn` never formats a timestamp, so it never needs them.
 * From this call until the returned function is called, `new Intl.DateTimeFormat(...)` returns a
 * stand-in that builds the real formatter on first use and forwards to it; afterwards the real
 * constructor is back for everyone else. The stand-ins stay valid for good.
 */
export function deferDateTimeFormats(intl: { DateTimeFormat: DateTimeFormatConstructor } = Intl): () => void {
  const native = intl.DateTimeFormat;
  const deferred = function DateTimeFormat(locales?: string | string[], options?: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
    let real: Intl.DateTimeFormat | undefined;
    const formatter = () => (real ??= new native(locales, options));
    return new Proxy(Object.create(native.prototype) as Intl.DateTimeFormat, {
      get: (_stand, key) => {
        const target = formatter();
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  } as unknown as DateTimeFormatConstructor;
  Object.defineProperty(deferred, 'prototype', { value: native.prototype });
  Object.defineProperty(deferred, 'supportedLocalesOf', { value: native.supportedLocalesOf.bind(native) });
  intl.DateTimeFormat = deferred;
  return () => {
    if (intl.DateTimeFormat === deferred) intl.DateTimeFormat = native;
  };
}
