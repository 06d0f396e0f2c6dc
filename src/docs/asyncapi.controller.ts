import { Controller, Get } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { ASYNCAPI } from './asyncapi';

@ApiExcludeController()
@SkipThrottle()
@Controller()
export class AsyncApiController {
  @Get('asyncapi.json')
  document(): typeof ASYNCAPI {
    return ASYNCAPI;
  }
}
