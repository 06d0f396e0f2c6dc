import { Controller, Get, Header, NotFoundException, NotImplementedException, StreamableFile } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import jwt from 'jsonwebtoken';
import { createReadStream, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import { DEMO_PAGE, DEMO_SCRIPT } from './demo-page';

/** The SDK's browser bundle, built by `npm run build` (client/dist). */
const BUNDLE = join(__dirname, '..', '..', 'client', 'dist', 'push-client.browser.js');

/**
 * /demo: a page that connects as a device with the SDK's browser bundle, shows its connection and
 * heartbeat, lists what arrives, and sends notifications through the REST API. Registered only
 * when DemoSettings.enabled (see there for the rule). The session endpoint mints a one-hour device
 * token and, only when DemoSettings.shareApiKey, hands the page the first API key.
 */
@ApiExcludeController()
@SkipThrottle()
@Controller('demo')
export class DemoController {
  constructor(private readonly config: AppConfig) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(): string {
    return DEMO_PAGE;
  }

  @Get('demo.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  script(): string {
    return DEMO_SCRIPT;
  }

  @Get('push-client.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  bundle(): StreamableFile {
    if (!existsSync(BUNDLE)) throw new NotFoundException('the SDK bundle is not built: run npm run build');
    return new StreamableFile(createReadStream(BUNDLE));
  }

  @Get('session')
  session(): { deviceId: string; userId: string; token: string; apiKey?: string } {
    if (this.config.jwt.kind !== 'secret') {
      throw new NotImplementedException('the demo mints HS256 tokens; with DEVICE_JWT_PUBLIC_KEY it cannot');
    }
    const deviceId = `demo-${randomBytes(4).toString('hex')}`;
    const userId = 'demo-user';
    const token = jwt.sign({ sub: userId, deviceId, platform: 'web', topics: ['demo.*'] }, this.config.jwt.secret, {
      algorithm: 'HS256',
      expiresIn: '1h',
    });
    return { deviceId, userId, token, apiKey: this.config.demo.shareApiKey ? this.config.apiKeys[0] : undefined };
  }
}
