import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { FieldError, invalidFields } from '../common/field-errors';
import { EventLog } from './event-log';
import { AFTER_ALL_PARTITIONS, EVENT_ID, EVENT_TYPE_PREFIXES, eventPosition, EVENT_TYPES, EventEnvelope, typeMatcher, unknownTypePatterns } from './event.types';

export const MAX_EVENTS_PAGE = 1_000;
export const DEFAULT_EVENTS_PAGE = 100;
/** Most log entries one request reads while a `types` filter skips them: a rare type cannot make a request unbounded. */
export const MAX_EVENTS_SCANNED = 10_000;
/** The cursor of an empty log: "from the oldest retained event". */
const START = '0-0';

export interface EventsQuery {
  after?: unknown;
  limit?: unknown;
  types?: unknown;
}

export interface EventsPage {
  events: EventEnvelope[];
  /** Pass back as `after` for what follows; always present. */
  next: string;
}

/** The pull API over the event log: validation, the `types` filter, paging. */
@Injectable()
export class EventsService {
  constructor(
    private readonly log: EventLog,
    private readonly clock: Clock,
  ) {}

  async page(query: EventsQuery): Promise<EventsPage> {
    const { after, limit, matches } = parseQuery(query);
    const now = this.clock.now();
    const events: EventEnvelope[] = [];
    let cursor = after;
    let scanned = 0;
    while (events.length < limit && scanned < MAX_EVENTS_SCANNED) {
      // Without a filter every entry read is returned; with one, read ahead in larger batches.
      const want = matches ? Math.min(MAX_EVENTS_PAGE, Math.max(limit - events.length, 100)) : limit - events.length;
      const batch = await this.log.read(cursor, want, now);
      for (const e of batch) {
        cursor = e.id;
        scanned++;
        if (matches && !matches(e.type)) continue;
        events.push(e);
        if (events.length === limit) break;
      }
      if (batch.length < want) break;
    }
    return { events, next: cursor ?? START };
  }
}

function parseQuery(query: EventsQuery): { after?: string; limit: number; matches?: (type: string) => boolean } {
  const errors: FieldError[] = [];
  const one = (field: string, value: unknown): string | undefined => {
    if (value === undefined || typeof value === 'string') return value;
    errors.push({ field, reasons: [`${field} must be given once, as a string`] });
    return undefined;
  };
  const after = one('after', query.after);
  if (after !== undefined && (!EVENT_ID.test(after) || eventPosition(after).p > AFTER_ALL_PARTITIONS)) {
    errors.push({ field: 'after', reasons: ['after must be a cursor this API returned as next'] });
  }
  const rawLimit = one('limit', query.limit);
  const limit = rawLimit === undefined ? DEFAULT_EVENTS_PAGE : Number(rawLimit);
  if (rawLimit !== undefined && (!/^\d{1,4}$/.test(rawLimit) || limit < 1 || limit > MAX_EVENTS_PAGE)) {
    errors.push({ field: 'limit', reasons: [`limit must be an integer from 1 to ${MAX_EVENTS_PAGE}`] });
  }
  const rawTypes = one('types', query.types);
  let matches: ((type: string) => boolean) | undefined;
  if (rawTypes !== undefined) {
    const patterns = rawTypes.split(',').map((t) => t.trim());
    const bad = unknownTypePatterns(patterns);
    if (bad.length) {
      errors.push({
        field: 'types',
        reasons: [`unknown event type or pattern ${bad.map((b) => JSON.stringify(b)).join(', ')}: use ${EVENT_TYPES.join(', ')} or ${EVENT_TYPE_PREFIXES.map((p) => `${p}.*`).join(', ')}`],
      });
    }
    matches = typeMatcher(patterns);
  }
  if (errors.length) throw invalidFields(errors);
  return { after, limit, matches };
}
