import { BadRequestException, Controller, Get, Header, NotFoundException, NotImplementedException, Query, StreamableFile } from '@nestjs/common';
import { ApiExcludeController } from '../docs/openapi-decorators';
import jwt from 'jsonwebtoken';
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ID } from '../common/patterns';
import { AppConfig } from '../config/app-config';
import { DEMO_PAGE, DEMO_SCRIPT, DEMO_SERVICE_WORKER } from './demo-page';

/**
 * The device the demo page connects as unless its URL names another (`/demo?device=demo-2`): a
 * fixed id, so the curl that `npm start` prints and the README's reach the page a newcomer has open.
 */
export const DEMO_DEVICE_ID = 'demo-device';
export const DEMO_USER_ID = 'demo-user';

/** The SDK's browser bundle, built by `npm run build` (client/dist). */
const BUNDLE = join(__dirname, '..', '..', 'client', 'dist', 'push-client.browser.js');

/**
 * /demo: a page that connects as a device with the SDK's browser bundle, shows its connection and
 * heartbeat, lists what arrives (on the socket, or natively through its Web Push service worker),
 * and sends notifications through the REST API. Registered only
 * when DemoSettings.enabled (see there for the rule). The session endpoint mints a one-hour device
 * token and, only when DemoSettings.shareApiKey, hands the page the first API key.
 */
@ApiExcludeController()
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

  /** The service worker that subscribes to Web Push and shows what arrives natively (scope /demo/). */
  @Get('push-sw.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  serviceWorker(): string {
    return DEMO_SERVICE_WORKER;
  }

  @Get('push-client.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  bundle(): StreamableFile {
    if (!existsSync(BUNDLE)) throw new NotFoundException('the SDK bundle is not built: run npm run build');
    return new StreamableFile(createReadStream(BUNDLE));
  }

  @Get('session')
  session(@Query('device') device?: string): { deviceId: string; userId: string; token: string; apiKey?: string; vapidPublicKey?: string } {
    if (this.config.jwt.kind !== 'secret') {
      throw new NotImplementedException('the demo mints HS256 tokens; with DEVICE_JWT_PUBLIC_KEY it cannot');
    }
    const deviceId: unknown = device ?? DEMO_DEVICE_ID; // a repeated ?device= arrives as an array
    if (typeof deviceId !== 'string' || !deviceId.startsWith('demo-') || !ID.test(deviceId)) throw new BadRequestException(`device must start with demo- and be ${ID.describe}`);
    const userId = DEMO_USER_ID;
    const token = jwt.sign({ sub: userId, deviceId, platform: 'web', topics: ['demo.*'] }, this.config.jwt.secret, {
      algorithm: 'HS256',
      expiresIn: '1h',
    });
    // The VAPID public key is public by design (browsers hand it to their push service); the page subscribes with it.
    const vapidPublicKey = this.config.pushProviders.webpush?.publicKey;
    return { deviceId, userId, token, apiKey: this.config.demo.shareApiKey ? this.config.apiKeys[0] : undefined, vapidPublicKey };
  }
}
