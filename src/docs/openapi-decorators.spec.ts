import 'reflect-metadata';
import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import * as deferred from './openapi-decorators';

type Decorators = Pick<typeof deferred, deferred.DecoratorName>;

/** Classes decorated as the gateway's controllers and DTOs are, with one set of decorators or the other. */
function defineClasses(api: Decorators) {
  class ItemDto {
    @api.ApiProperty({ description: 'the id', example: 'a-1' }) id!: string;
    @api.ApiPropertyOptional({ enum: ['x', 'y'] }) kind?: 'x' | 'y';
  }
  class ListDto {
    @api.ApiProperty({ type: () => [ItemDto] }) items!: ItemDto[];
    @api.ApiProperty({ example: 2 }) count!: number;
  }
  @api.ApiTags('items')
  @api.ApiBearerAuth('apiKey')
  @api.ApiResponse({ status: 401, description: 'no key' })
  @Controller('items')
  class ItemsController {
    @Get()
    @api.ApiOperation({ summary: 'List items' })
    @api.ApiQuery({ name: 'limit', required: false })
    @api.ApiResponse({ status: 200, type: ListDto })
    list(): ListDto {
      return { items: [], count: 0 };
    }

    @Post()
    @HttpCode(202)
    @api.ApiOperation({ summary: 'Add an item' })
    @api.ApiHeader({ name: 'Idempotency-Key', required: false })
    @api.ApiBody({ schema: { type: 'object', properties: { id: { type: 'string' } } } })
    @api.ApiResponse({ status: 202, type: ItemDto })
    @api.ApiResponse({ status: 400, description: 'bad body' })
    add(): ItemDto {
      return { id: 'a' };
    }
  }
  @api.ApiExcludeController()
  @Controller('hidden')
  class HiddenController {
    @Get()
    get(): string {
      return '';
    }
  }
  return { ItemDto, ListDto, ItemsController, HiddenController };
}

/** Every metadata entry on a class, its prototype's members and their functions, with classes named rather than compared by identity. */
function metadataOf(cls: abstract new (...args: never[]) => unknown): unknown {
  const proto = cls.prototype as Record<string, unknown>;
  const entries = (target: object, key?: string) =>
    Object.fromEntries(
      Reflect.getOwnMetadataKeys(target, key as string)
        .map((k) => [String(k), Reflect.getOwnMetadata(k, target, key as string) as unknown])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    );
  const members = new Set(Object.getOwnPropertyNames(proto));
  const swaggerProps = (Reflect.getOwnMetadata('swagger/apiModelPropertiesArray', proto) as string[] | undefined) ?? [];
  for (const p of swaggerProps) members.add(p.replace(/^:/, ''));
  const out = {
    class: entries(cls),
    prototype: entries(proto),
    members: Object.fromEntries(
      [...members].sort().map((m) => {
        const value = Object.getOwnPropertyDescriptor(proto, m)?.value as unknown;
        return [m, { member: entries(proto, m), fn: typeof value === 'function' ? entries(value) : {} }];
      }),
    ),
  };
  return JSON.parse(JSON.stringify(out, (_k, v: unknown) => (typeof v === 'function' ? `function ${v.name}` : v))) as unknown;
}

describe('OpenAPI decorators applied on first use (openapi-decorators.ts)', () => {
  it('write, once the library loads, exactly what the library\'s own decorators write at load time', () => {
    const before = defineClasses(deferred);
    // Recorded only: nothing of Swagger's is on the classes yet.
    expect(deferred.deferredDecoratorCount()).toBeGreaterThan(10);
    expect(Reflect.getOwnMetadataKeys(before.ItemsController).some((k) => String(k).startsWith('swagger/'))).toBe(false);
    expect(Reflect.getOwnMetadata('swagger/apiModelPropertiesArray', before.ItemDto.prototype)).toBeUndefined();

    const swagger = deferred.openApiLibrary();
    expect(deferred.deferredDecoratorCount()).toBe(0);
    expect(deferred.openApiLibrary()).toBe(swagger);
    const direct = defineClasses(swagger);
    // A class defined after the library loaded gets the library's decorators at once.
    const after = defineClasses(deferred);

    for (const name of ['ItemDto', 'ListDto', 'ItemsController', 'HiddenController'] as const) {
      const expected = metadataOf(direct[name]);
      expect(JSON.stringify(expected)).toContain('swagger/');
      expect(metadataOf(before[name])).toEqual(expected);
      expect(metadataOf(after[name])).toEqual(expected);
    }
  });
});
