import { ValidationError, ValidationPipe } from '@nestjs/common';
import * as classTransformer from 'class-transformer';
import * as classValidator from 'class-validator';
import { FieldError, invalidFields } from './field-errors';

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = e.constraints ? [{ field, reasons: Object.values(e.constraints) }] : [];
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

/**
 * For class-validator DTOs: 400s that say which field is wrong and why. Bodies that carry
 * client JSON as is (a notification's `data`) are validated by a JSON Schema instead (see
 * json-schema.ts): class-transformer rebuilds objects and would drop or mangle their keys.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    // Handed over rather than left to the pipe's lazy import(): that import would load both
    // libraries at an arbitrary moment after start, here in the middle of the Redis handshake,
    // whose commands then outlived REDIS_COMMAND_TIMEOUT_MS on a busy machine and the start failed.
    validatorPackage: classValidator,
    transformerPackage: classTransformer,
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => invalidFields(flatten(errors)),
  });
}
