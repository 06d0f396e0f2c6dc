import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { FieldError } from './field-errors';
import { ID, IDEMPOTENCY_KEY, NETWORK_KEY, NOTIFICATION_ID, TOPIC, TOPIC_GRANT } from './patterns';

/**
 * JSON Schema validation for REST bodies. ajv compiles a schema once into a plain function that
 * reads the parsed body where it is: nothing is copied or rebuilt, so client JSON passes through
 * exactly as it was sent (class-transformer rebuilt it and lost keys such as `toString`), and a
 * valid body costs a few property checks. The same schema objects document the body in OpenAPI.
 */
// allErrors: a 400 names every wrong field at once. strictRequired off: `anyOf: [{ required }]`
// branches name properties that the parent schema defines.
const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
// OpenAPI's `example` stays in the schemas for Swagger; it validates nothing.
ajv.addVocabulary(['example']);

export function compileBodySchema<T>(schema: object): ValidateFunction<T> {
  return ajv.compile<T>(schema);
}

const describedPatterns = new Map([ID, TOPIC, TOPIC_GRANT, NETWORK_KEY, NOTIFICATION_ID, IDEMPOTENCY_KEY].map((p) => [p.pattern, p.describe]));

const TYPE_NAMES: Record<string, string> = {
  object: 'a JSON object',
  array: 'an array',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  null: 'null',
};

/**
 * ajv's errors as the documented `fields` list: one entry per field, array items under their array.
 * `whole` names the value itself in a reason (a REST body, a socket event's payload).
 */
export function schemaFieldErrors(errors: readonly ErrorObject[], whole = 'the request body'): FieldError[] {
  const fields = new Map<string, Set<string>>();
  const add = (field: string, reason: string) => {
    const reasons = fields.get(field) ?? new Set<string>();
    reasons.add(reason);
    fields.set(field, reasons);
  };
  // `anyOf` of `required` branches means "at least one of these": its branch errors become one reason.
  const alternatives = new Map<string, string[]>();
  for (const e of errors) {
    if (e.keyword === 'required' && e.schemaPath.includes('/anyOf/')) {
      const names = alternatives.get(e.instancePath) ?? [];
      names.push(String((e.params as { missingProperty: unknown }).missingProperty));
      alternatives.set(e.instancePath, names);
    }
  }
  for (const e of errors) {
    if (e.schemaPath.includes('/anyOf/')) continue;
    const [field, reason] = explain(e, alternatives.get(e.instancePath) ?? [], whole);
    add(field, reason);
  }
  return [...fields].map(([field, reasons]) => ({ field, reasons: [...reasons] }));
}

function explain(error: ErrorObject, alternatives: string[], whole: string): [field: string, reason: string] {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = segments.at(-1);
  const isItem = last !== undefined && /^\d+$/.test(last);
  const field = (isItem ? segments.slice(0, -1) : segments).join('.');
  const subject = isItem ? `each item of ${field}` : field || whole;
  const child = (name: unknown) => (field ? `${field}.${String(name)}` : String(name));
  const params = error.params as Record<string, unknown>;
  const limit = String(params.limit);
  switch (error.keyword) {
    case 'required':
      return [child(params.missingProperty), `${child(params.missingProperty)} is required`];
    case 'additionalProperties':
      return [child(params.additionalProperty), `property ${String(params.additionalProperty)} should not exist`];
    case 'anyOf':
      return [field, alternatives.length ? `one of ${alternatives.join(', ')} is required` : `${subject} matches none of the allowed forms`];
    case 'type':
      return [field, `${subject} must be ${[params.type].flat().map((t) => TYPE_NAMES[String(t)] ?? String(t)).join(' or ')}`];
    case 'pattern':
      return [field, `${subject} must be ${describedPatterns.get(String(params.pattern)) ?? `like /${String(params.pattern)}/`}`];
    case 'minimum':
      return [field, `${subject} must not be less than ${limit}`];
    case 'maximum':
      return [field, `${subject} must not be greater than ${limit}`];
    case 'minLength':
      return [field, `${subject} must be at least ${limit} character(s) long`];
    case 'maxLength':
      return [field, `${subject} must be at most ${limit} characters long`];
    case 'minItems':
      return [field, `${subject} must hold at least ${limit} item(s)`];
    case 'maxItems':
      return [field, `${subject} must hold at most ${limit} items`];
    case 'enum':
      return [field, `${subject} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`];
    default:
      return [field, `${subject} ${error.message ?? 'is invalid'}`];
  }
}
