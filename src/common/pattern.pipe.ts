import { PipeTransform } from '@nestjs/common';
import { invalidFields } from './field-errors';
import { NamePattern } from './patterns';

/** A path or query parameter that must match a pattern, else a 400 naming it. */
export class PatternPipe implements PipeTransform<unknown, string> {
  constructor(
    private readonly pattern: NamePattern,
    private readonly field: string,
  ) {}

  transform(value: unknown): string {
    if (this.pattern.test(value)) return value;
    throw invalidFields([{ field: this.field, reasons: [`${this.field} must be ${this.pattern.describe}`] }]);
  }
}
