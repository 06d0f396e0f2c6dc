import { findJsonProblem } from './json-limits';

/** `depth` containers, objects and arrays alternating, around `leaf` (all as JSON text). */
const nested = (depth: number, leaf = '1') => {
  let text = leaf;
  for (let level = depth; level > 0; level--) text = level % 2 ? `{"k":${text}}` : `[${text}]`;
  return JSON.parse(text) as unknown;
};

describe('findJsonProblem', () => {
  it('counts objects and arrays as levels, and nothing else', () => {
    expect(findJsonProblem({ a: 1 }, 1)).toBeUndefined();
    expect(findJsonProblem({ a: {} }, 1)).toBe('too_deep');
    expect(findJsonProblem({ a: [] }, 1)).toBe('too_deep');
    expect(findJsonProblem([[1, 'x', null, true]], 2)).toBeUndefined();
    expect(findJsonProblem('text', 0)).toBeUndefined();
    expect(findJsonProblem({}, 0)).toBe('too_deep');
  });

  it('accepts exactly maxDepth levels and refuses one more', () => {
    expect(findJsonProblem(nested(32), 32)).toBeUndefined();
    expect(findJsonProblem(nested(33), 32)).toBe('too_deep');
  });

  it('finds the deep branch among shallow siblings', () => {
    const value = { a: 1, b: [1, 2, { c: 'x' }], d: { e: nested(31) } };
    expect(findJsonProblem(value, 32)).toBe('too_deep');
    expect(findJsonProblem(value, 33)).toBeUndefined();
  });

  it('walks 200,000 levels without recursion and stops at the limit', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown;
    expect(findJsonProblem(deep, 32)).toBe('too_deep');
    expect(findJsonProblem(deep, 400_000)).toBeUndefined();
  });

  it('refuses numbers JSON.parse turned into infinities, wherever they are', () => {
    for (const text of ['1e400', '{"a":-1e400}', '[1,[2,[3e999]]]', '{"__proto__":{"x":1e400}}']) {
      expect(findJsonProblem(JSON.parse(text), 32)).toBe('not_finite');
    }
    expect(findJsonProblem(JSON.parse('{"a":1.7976931348623157e308,"b":-0,"c":5e-324}'), 32)).toBeUndefined();
  });

  it('walks own __proto__ keys like any other', () => {
    expect(findJsonProblem(JSON.parse('{"__proto__":{"a":{"b":1}}}'), 2)).toBe('too_deep');
    expect(findJsonProblem(JSON.parse('{"constructor":{"prototype":[[]]}}'), 3)).toBe('too_deep');
  });

  it('keeps nothing between calls', () => {
    expect(findJsonProblem(nested(40), 32)).toBe('too_deep');
    expect(findJsonProblem({ a: 1 }, 1)).toBeUndefined();
  });
});
