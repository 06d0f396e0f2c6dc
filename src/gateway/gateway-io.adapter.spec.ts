import type { INestApplicationContext } from '@nestjs/common';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Socket } from 'socket.io';
import { GatewayIoAdapter } from './gateway-io.adapter';

describe('GatewayIoAdapter: Nest binds nothing per socket', () => {
  const adapter = new GatewayIoAdapter({} as INestApplicationContext);
  const socket = { on: () => socket } as unknown as Socket;

  it('binds no message handlers when the gateway declares none, and refuses a @SubscribeMessage handler', () => {
    expect(() => adapter.bindMessageHandlers(socket, [])).not.toThrow();
    const handler = { message: 'subscribe', callback: () => undefined } as unknown as MessageMappingProperties;
    expect(() => adapter.bindMessageHandlers(socket, [handler])).toThrow("@SubscribeMessage('subscribe'): device events are bound in DeviceGateway, not by Nest");
  });
});
