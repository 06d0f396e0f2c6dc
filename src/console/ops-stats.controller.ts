import { Controller, Get, Header, Req } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '../docs/openapi-decorators';
import { ApiAuth, OpsTokenReads } from '../auth/api-auth.decorator';
import type { ApiRequest } from '../auth/api-auth.guard';
import { OpsStatsDto } from './ops-stats.dto';
import { OpsStatsService } from './ops-stats.service';

@ApiTags('ops')
@ApiAuth()
@Controller('v1/ops')
export class OpsStatsController {
  constructor(private readonly stats: OpsStatsService) {}

  @Get('stats')
  @OpsTokenReads()
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: "This instance's heartbeats/s, pushes/s and sweeps over the last five minutes (what /console charts)",
    description: 'Read once a second from the Prometheus counters /metrics exposes; per instance (see instanceId).',
  })
  @ApiResponse({ status: 200, type: OpsStatsDto })
  async get(@Req() req: ApiRequest): Promise<OpsStatsDto> {
    return { ...(await this.stats.stats()), credential: req.credential ?? 'api_key' };
  }
}
