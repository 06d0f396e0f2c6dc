import { readFileSync } from 'node:fs';

/**
 * The example exchanges of docs/protocol.md, read so that a test can perform them. Each one is a
 * fenced block right after an `<!-- conformance: <step> -->` comment; its lines are
 *   `open <url>`              the client opens a WebSocket
 *   `→ <frame>` / `← <frame>`  a frame the client sends / the server sends next
 *   `← HTTP <status> <body>`  the server refuses the WebSocket upgrade
 *   `← close` / `close`       the server / the client closes the connection
 *   `POST|GET <path> [json]`  a REST call with the API key, `= <status> <json>` its answer
 * and anything else is commentary. `<name>` is a placeholder: in a frame or a JSON body, `"<name>"`
 * stands for a string and a bare `<name>` for a number; the first match binds it, later ones
 * must equal it, and a frame to send takes its value.
 */
export type DocLine =
  | { kind: 'open'; url: string }
  | { kind: 'send' | 'expect'; frame: string }
  | { kind: 'refused'; status: number; body: string }
  | { kind: 'server-close' | 'client-close' }
  | { kind: 'rest'; method: string; path: string; body?: string }
  | { kind: 'answer'; status: number; body: string };

export type Scope = Record<string, string | number>;

export function readProtocolDoc(path: string): Map<string, DocLine[]> {
  const steps = new Map<string, DocLine[]>();
  const re = /<!-- conformance: ([\w-]+) -->\s*\n```[^\n]*\n([\s\S]*?)\n```/g;
  for (const [, step, block] of readFileSync(path, 'utf8').matchAll(re)) {
    if (steps.has(step!)) throw new Error(`docs/protocol.md: step "${step}" appears twice`);
    steps.set(step!, block!.split('\n').map(parseLine).filter((l): l is DocLine => l !== undefined));
  }
  return steps;
}

function parseLine(line: string): DocLine | undefined {
  let m: RegExpExecArray | null;
  if ((m = /^open (\S+)$/.exec(line))) return { kind: 'open', url: m[1]! };
  if (line === '← close') return { kind: 'server-close' };
  if (line === 'close') return { kind: 'client-close' };
  if ((m = /^← HTTP (\d{3}) (.*)$/.exec(line))) return { kind: 'refused', status: Number(m[1]), body: m[2]! };
  if ((m = /^→ (\S.*)$/.exec(line))) return { kind: 'send', frame: m[1]! };
  if ((m = /^← (\S.*)$/.exec(line))) return { kind: 'expect', frame: m[1]! };
  if ((m = /^(GET|POST|DELETE) (\S+)(?: (.+))?$/.exec(line))) return { kind: 'rest', method: m[1]!, path: m[2]!, body: m[3] };
  if ((m = /^= (\d{3}) (.+)$/.exec(line))) return { kind: 'answer', status: Number(m[1]), body: m[2]! };
  return undefined;
}

const PLACEHOLDER = /<([A-Za-z][\w]*)>/g;

function valueOf(scope: Scope, name: string): string | number {
  const value = scope[name];
  if (value === undefined) throw new Error(`placeholder <${name}> has no value yet`);
  return value;
}

/** A template with every placeholder replaced by its value (JSON-escaped inside strings). */
export function fill(template: string, scope: Scope): string {
  return template.replace(/"<([A-Za-z]\w*)>"|<([A-Za-z]\w*)>/g, (_all, quoted?: string, bare?: string) =>
    quoted !== undefined ? JSON.stringify(String(valueOf(scope, quoted))) : String(valueOf(scope, bare!)),
  );
}

const MARK = '\u0000';

/** Parses JSON whose placeholders became marker strings (NUL, then `s:name` for strings, `n:name` for numbers). */
function templateJson(text: string): unknown {
  const marked = text.replace(/"<([A-Za-z]\w*)>"|<([A-Za-z]\w*)>/g, (_all, quoted?: string, bare?: string) =>
    quoted !== undefined ? `"\\u0000s:${quoted}"` : `"\\u0000n:${bare}"`,
  );
  return JSON.parse(marked);
}

/**
 * Matches `actual` against a template, binding placeholders into `scope`. Objects must have exactly
 * the template's keys (in any order): a field the document does not show is a mismatch.
 */
export function matchJson(template: string, actual: unknown, scope: Scope, at = '$'): void {
  matchValue(templateJson(template), actual, scope, at);
}

function matchValue(t: unknown, a: unknown, scope: Scope, at: string): void {
  if (typeof t === 'string' && t.startsWith(MARK)) {
    const [kind, name] = [t[1], t.slice(3)];
    if (kind === 's' ? typeof a !== 'string' : typeof a !== 'number') throw new Error(`${at}: <${name}> must be a ${kind === 's' ? 'string' : 'number'}, got ${JSON.stringify(a)}`);
    bind(scope, name, a as string | number, at);
    return;
  }
  if (Array.isArray(t)) {
    if (!Array.isArray(a) || a.length !== t.length) throw new Error(`${at}: expected ${t.length} items, got ${JSON.stringify(a)}`);
    t.forEach((item, i) => matchValue(item, a[i], scope, `${at}[${i}]`));
    return;
  }
  if (t !== null && typeof t === 'object') {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Error(`${at}: expected an object, got ${JSON.stringify(a)}`);
    const [tk, ak] = [Object.keys(t).sort(), Object.keys(a).sort()];
    if (tk.join() !== ak.join()) throw new Error(`${at}: keys ${JSON.stringify(ak)}, the document shows ${JSON.stringify(tk)}`);
    for (const k of tk) matchValue((t as Record<string, unknown>)[k], (a as Record<string, unknown>)[k], scope, `${at}.${k}`);
    return;
  }
  if (t !== a) throw new Error(`${at}: expected ${JSON.stringify(t)}, got ${JSON.stringify(a)}`);
}

function bind(scope: Scope, name: string, value: string | number, at: string): void {
  if (name in scope && scope[name] !== value) throw new Error(`${at}: <${name}> is ${JSON.stringify(scope[name])} already, got ${JSON.stringify(value)}`);
  scope[name] = value;
}

/**
 * Matches one Socket.IO / Engine.IO frame: the packet-type digits (and ack id) before the first
 * `[` or `{`, then the JSON after them.
 */
export function matchFrame(template: string, frame: string, scope: Scope): void {
  const split = (s: string) => {
    const i = s.search(/[[{]/);
    return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i)];
  };
  const [tHead, tBody] = split(template);
  const [aHead, aBody] = split(frame);
  const names: string[] = [];
  const headRe = new RegExp(`^${tHead!.replace(PLACEHOLDER, (_m, name: string) => (names.push(name), '(\\d+)'))}$`);
  const m = headRe.exec(aHead!);
  if (!m) throw new Error(`frame ${frame}: expected ${template}`);
  names.forEach((name, i) => bind(scope, name, Number(m[i + 1]), 'packet head'));
  if (!tBody) {
    if (aBody) throw new Error(`frame ${frame}: expected no payload (${template})`);
    return;
  }
  try {
    matchJson(tBody, JSON.parse(aBody!), scope);
  } catch (err) {
    throw new Error(`frame ${frame}\n  against ${template}\n  ${(err as Error).message}`, { cause: err });
  }
}
