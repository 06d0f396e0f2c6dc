import { Controller, Get } from '@nestjs/common';
import { ApiExcludeController } from './openapi-decorators';
import { ASYNCAPI } from './asyncapi';

@ApiExcludeController()
@Controller()
export class AsyncApiController {
  @Get('asyncapi.json')
  document(): typeof ASYNCAPI {
    return ASYNCAPI;
  }
}
