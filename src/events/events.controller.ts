import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiResponse, ApiTags } from '../docs/openapi-decorators';
import { ApiAuth } from '../auth/api-auth.decorator';
import { errorResponse } from '../common/error.dto';
import { EventsPageDto } from './event.dto';
import { EVENT_TYPES } from './event.types';
import { DEFAULT_EVENTS_PAGE, EventsService, MAX_EVENTS_PAGE } from './events.service';

@ApiTags('events')
@ApiAuth()
@Controller('v1')
export class EventsController {
  constructor(private readonly events: EventsService) {}

  @Get('events')
  @ApiOperation({
    summary: 'Events for backends, oldest first (kept EVENT_RETENTION_HOURS)',
    description: 'The reconciliation path: page with `next` until a page comes back empty. Receivers deduplicate by `id` and order per device by `data.seq`.',
  })
  @ApiQuery({ name: 'after', required: false, description: 'A `next` cursor from an earlier page; absent: from the oldest retained event' })
  @ApiQuery({ name: 'limit', required: false, description: `1 to ${MAX_EVENTS_PAGE} (default ${DEFAULT_EVENTS_PAGE})` })
  @ApiQuery({ name: 'types', required: false, description: `Comma-separated: ${EVENT_TYPES.join(', ')}, or patterns such as device.*` })
  @ApiResponse({ status: 200, type: EventsPageDto })
  @ApiResponse(
    errorResponse(400, 'Bad after, limit or types (the `fields` list names them)', 'limit: limit must be an integer from 1 to 1000', {
      fields: [{ field: 'limit', reasons: ['limit must be an integer from 1 to 1000'] }],
    }),
  )
  page(@Query('after') after?: unknown, @Query('limit') limit?: unknown, @Query('types') types?: unknown): Promise<EventsPageDto> {
    return this.events.page({ after, limit, types });
  }
}
