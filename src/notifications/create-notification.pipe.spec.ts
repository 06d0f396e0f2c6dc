import { BadRequestException } from '@nestjs/common';
import { CreateNotificationPipe } from './create-notification.pipe';

const pipe = new CreateNotificationPipe();
const fieldsOf = (body: unknown) => {
  try {
    pipe.transform(body);
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestException);
    return ((err as BadRequestException).getResponse() as { fields: unknown }).fields;
  }
  throw new Error('accepted');
};

describe('CreateNotificationPipe', () => {
  it('hands on the parsed body itself: nothing copied, no key lost or added', () => {
    const body = JSON.parse('{"deviceIds":["a"],"data":{"__proto__":{"x":1},"constructor":2,"toString":"s","b":[{"valueOf":null}]}}') as Record<string, unknown>;
    const text = JSON.stringify(body);
    expect(pipe.transform(body)).toBe(body);
    expect(JSON.stringify(body)).toBe(text);
    expect(Object.keys(body.data as object)).toEqual(['__proto__', 'constructor', 'toString', 'b']);
  });

  it('names every wrong field at once', () => {
    expect(fieldsOf({ topic: 'a b', data: JSON.parse('{"x":1e400}') as unknown, ttl: 'soon', title: '' })).toEqual([
      { field: 'topic', reasons: [expect.stringMatching(/^topic must be a topic/)] },
      { field: 'title', reasons: ['title must be at least 1 character(s) long'] },
      { field: 'ttl', reasons: ['ttl must be an integer'] },
      { field: 'data', reasons: [expect.stringMatching(/beyond the range of a double/)] },
    ]);
  });

  it('asks for a target and data, and a JSON object as the body', () => {
    expect(fieldsOf({})).toEqual([
      { field: '', reasons: ['one of deviceIds, userIds, topic is required'] },
      { field: 'data', reasons: ['data is required'] },
    ]);
    for (const body of [undefined, null, [], 'x', 1]) expect(fieldsOf(body)).toEqual([{ field: '', reasons: ['the request body must be a JSON object'] }]);
  });

  it('refuses data deeper than 32 levels before anything recurses into it', () => {
    const deep = JSON.parse(`{"deviceIds":["a"],"data":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`) as unknown;
    expect(fieldsOf(deep)).toEqual([{ field: 'data', reasons: ['data must be nested at most 32 levels deep (objects and arrays count)'] }]);
  });
});
