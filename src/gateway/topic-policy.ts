const TOPIC_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
export const MAX_TOPICS_PER_SESSION = 100;

/**
 * Which topics a device may join: those its token grants, by exact name or by a `prefix.*`
 * pattern (which matches any name starting with `prefix.`, at any depth).
 */
export function isTopicAllowed(grants: readonly string[], topic: string): boolean {
  return grants.some((g) => (g.endsWith('.*') ? topic.startsWith(g.slice(0, -1)) && topic.length > g.length - 1 : g === topic));
}

/** Validates a subscribe/unsubscribe payload; a string explains a refusal. */
export function readTopics(payload: unknown): string[] | string {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return 'payload must be { topics: string[] }';
  const { topics } = payload as { topics?: unknown };
  if (!Array.isArray(topics) || topics.length === 0) return 'topics must be a non-empty array';
  if (topics.length > MAX_TOPICS_PER_SESSION) return `at most ${MAX_TOPICS_PER_SESSION} topics at once`;
  const bad = topics.find((t) => typeof t !== 'string' || !TOPIC_NAME.test(t));
  if (bad !== undefined) return `invalid topic ${JSON.stringify(bad)}: 1-128 characters of [A-Za-z0-9._:-]`;
  return [...new Set(topics as string[])];
}
