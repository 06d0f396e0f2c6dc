import { BadRequestException } from '@nestjs/common';

/** One invalid input: `field` is a dotted path (`''` for the request body itself). */
export interface FieldError {
  field: string;
  reasons: string[];
}

/** The documented 400: a readable message plus the `fields` list, whatever did the validating. */
export function invalidFields(fields: FieldError[]): BadRequestException {
  return new BadRequestException({
    message: fields.map((f) => (f.field ? `${f.field}: ${f.reasons.join(', ')}` : f.reasons.join(', '))).join('; '),
    fields,
  });
}
