import { isTopicAllowed, readTopics } from './topic-policy';

describe('topic policy', () => {
  it('allows exact grants and prefix.* patterns only', () => {
    const grants = ['news', 'sport.*'];
    expect(isTopicAllowed(grants, 'news')).toBe(true);
    expect(isTopicAllowed(grants, 'sport.football')).toBe(true);
    expect(isTopicAllowed(grants, 'sport.football.live')).toBe(true);
    expect(isTopicAllowed(grants, 'sport')).toBe(false);
    expect(isTopicAllowed(grants, 'sport.')).toBe(false);
    expect(isTopicAllowed(grants, 'sports.x')).toBe(false);
    expect(isTopicAllowed(grants, 'news.local')).toBe(false);
    expect(isTopicAllowed([], 'news')).toBe(false);
  });

  it('validates subscribe payloads', () => {
    expect(readTopics({ topics: ['a', 'a', 'b'] })).toEqual(['a', 'b']);
    expect(readTopics({ topics: [] })).toMatch(/non-empty/);
    expect(readTopics({ topics: ['bad topic'] })).toMatch(/invalid topic/);
    expect(readTopics({ topics: [1] })).toMatch(/invalid topic/);
    expect(readTopics('x')).toMatch(/payload must be/);
    expect(readTopics({ topics: Array.from({ length: 101 }, (_, i) => `t${i}`) })).toMatch(/at most 100/);
  });
});
