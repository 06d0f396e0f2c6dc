/** What makes a parsed JSON value unfit to pass on as it is. */
export type JsonProblem = 'too_deep' | 'not_finite';

// One stack for every call: the walk is synchronous, so calls never overlap, and a publish then
// allocates nothing here. Depths live beside the values instead of in per-entry tuples.
const values: object[] = [];
const depths: number[] = [];

/**
 * Checks a value that came out of JSON.parse without recursion, so no nesting can overflow the
 * call stack: containers (objects and arrays alike) nested deeper than `maxDepth` (`{"a":1}` is
 * one level), or a number JSON.parse turned into ±Infinity (`1e400`), which JSON.stringify would
 * send on as `null`. Stops at the first problem. Own keys only: a `__proto__` key from JSON.parse
 * is an own property and is walked like any other.
 */
export function findJsonProblem(root: unknown, maxDepth: number): JsonProblem | undefined {
  if (typeof root === 'number') return Number.isFinite(root) ? undefined : 'not_finite';
  if (root === null || typeof root !== 'object') return undefined;
  if (maxDepth < 1) return 'too_deep';
  values.push(root);
  depths.push(1);
  try {
    while (values.length > 0) {
      const container = values.pop() as Record<string, unknown>;
      const depth = depths.pop() as number;
      if (Array.isArray(container)) {
        for (const item of container) {
          const problem = visit(item, depth, maxDepth);
          if (problem) return problem;
        }
      } else {
        for (const key in container) {
          if (!Object.hasOwn(container, key)) continue;
          const problem = visit(container[key], depth, maxDepth);
          if (problem) return problem;
        }
      }
    }
    return undefined;
  } finally {
    // Never keep a request's objects alive after the call.
    values.length = 0;
    depths.length = 0;
  }
}

function visit(child: unknown, parentDepth: number, maxDepth: number): JsonProblem | undefined {
  if (typeof child === 'number') return Number.isFinite(child) ? undefined : 'not_finite';
  if (child === null || typeof child !== 'object') return undefined;
  if (parentDepth >= maxDepth) return 'too_deep';
  values.push(child);
  depths.push(parentDepth + 1);
  return undefined;
}
