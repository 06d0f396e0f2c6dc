import { Injectable, PipeTransform } from '@nestjs/common';
import { invalidFields } from '../common/field-errors';
import { findJsonProblem, JsonProblem } from '../common/json-limits';
import { compileBodySchema, schemaFieldErrors } from '../common/json-schema';
import { CREATE_NOTIFICATION_SCHEMA, CreateNotificationRequest, MAX_DATA_DEPTH } from './create-notification.dto';

const validate = compileBodySchema<CreateNotificationRequest>(CREATE_NOTIFICATION_SCHEMA);

const DATA_PROBLEMS: Record<JsonProblem, string> = {
  too_deep: `data must be nested at most ${MAX_DATA_DEPTH} levels deep (objects and arrays count)`,
  not_finite: 'data holds a number beyond the range of a double (such as 1e400), which would arrive as null',
};

/**
 * Validates the body of POST /v1/notifications where the JSON parser left it and hands on the
 * same object: `data` reaches devices exactly as posted. `data`'s depth is checked without
 * recursion before anything walks it (the idempotency fingerprint, JSON.stringify, Socket.IO).
 */
@Injectable()
export class CreateNotificationPipe implements PipeTransform<unknown, CreateNotificationRequest> {
  transform(value: unknown): CreateNotificationRequest {
    const problem = dataProblem(value);
    const valid = validate(value);
    if (valid && !problem) return value;
    const fields = valid ? [] : schemaFieldErrors(validate.errors ?? []);
    if (problem) fields.push({ field: 'data', reasons: [DATA_PROBLEMS[problem]] });
    throw invalidFields(fields);
  }
}

/** Checked even when other fields are wrong, so one 400 names every problem. */
function dataProblem(body: unknown): JsonProblem | undefined {
  const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined; // the schema's type check answers
  return findJsonProblem(data, MAX_DATA_DEPTH);
}
