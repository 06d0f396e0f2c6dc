import { MAX_TOPICS_PER_SESSION } from '../common/patterns';
import { isTopicAllowed, planSubscribe } from './topic-policy';

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

  it('joins only new, granted topics and refuses the whole request otherwise', () => {
    expect(planSubscribe(['news', 'sport.*'], ['news'], ['news', 'sport.a', 'sport.a'])).toEqual(['sport.a']);
    expect(planSubscribe(['news'], [], ['news', 'x', 'y'])).toEqual({
      ok: false,
      error: { code: 'forbidden_topic', message: 'not allowed by the token: x, y', topics: ['x', 'y'] },
    });
  });

  it(`caps a session at ${MAX_TOPICS_PER_SESSION} topics, counting those already joined`, () => {
    const joined = Array.from({ length: MAX_TOPICS_PER_SESSION - 1 }, (_, i) => `t.${i}`);
    expect(planSubscribe(['t.*'], joined, ['t.0', 't.new'])).toEqual(['t.new']);
    expect(planSubscribe(['t.*'], joined, ['t.new', 't.other'])).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
  });
});
