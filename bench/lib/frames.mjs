// Where a V8 profile's call frame comes from, shared by the CPU and allocation profile summaries.

/** Which package or source area a frame belongs to. */
export function area(url) {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return `gateway ${url.slice(dist + 6).split('/').slice(0, -1).join('/') || '.'}`;
  return url.replace(/^file:\/\//, '').split('/').slice(-2).join('/');
}

/** A frame's name for a table: function, area and line. */
export function frameKey(cf) {
  const a = area(cf.url);
  return `${cf.functionName || '(anonymous)'}  ${a}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
}
