import { ErrorAck, errorAck } from '../channel/socket-events';
import { MAX_TOPICS_PER_SESSION } from '../common/patterns';

/**
 * Which topics a device may join: those its token grants, by exact name or by a `prefix.*`
 * pattern (which matches any name starting with `prefix.`, at any depth).
 */
export function isTopicAllowed(grants: readonly string[], topic: string): boolean {
  return grants.some((g) => (g.endsWith('.*') ? topic.startsWith(g.slice(0, -1)) && topic.length > g.length - 1 : g === topic));
}

/**
 * Decides a subscribe: every topic must be granted, and the session may hold at most
 * MAX_TOPICS_PER_SESSION (each topic is a room, and rooms cost memory on every instance).
 * Returns the topics to join, or the error to answer.
 */
export function planSubscribe(grants: readonly string[], joined: readonly string[], requested: readonly string[]): string[] | ErrorAck {
  const topics = [...new Set(requested)];
  const refused = topics.filter((t) => !isTopicAllowed(grants, t));
  if (refused.length) return errorAck('forbidden_topic', `not allowed by the token: ${refused.join(', ')}`, { topics: refused });
  const already = new Set(joined);
  const fresh = topics.filter((t) => !already.has(t));
  if (already.size + fresh.length > MAX_TOPICS_PER_SESSION) {
    return errorAck('invalid_payload', `a session may hold at most ${MAX_TOPICS_PER_SESSION} topics`);
  }
  return fresh;
}
