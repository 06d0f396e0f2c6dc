import { Logger } from '@nestjs/common';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { lastResortErrorHandler } from './last-resort';

/** An error as http-errors makes them (body-parser, Express). */
const httpError = (status: number, message: string, expose: boolean) => Object.assign(new Error(message), { status, expose });

describe('lastResortErrorHandler', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    const app = express();
    app.disable('x-powered-by');
    app.get('/boom', () => {
      throw new Error('secret internals at /srv/app.js:1:1');
    });
    app.get('/client', (_req, _res, next) => next(httpError(416, 'range is wrong', true)));
    app.get('/hidden', (_req, _res, next) => next(httpError(400, 'internal detail', false)));
    app.get('/half', (_req, res, next) => {
      res.write('{"partial":');
      next(new Error('failed mid-answer'));
    });
    app.use(lastResortErrorHandler());
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('answers an unexpected error as a JSON 500 without internals', async () => {
    const res = await fetch(`${base}/boom`);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ statusCode: 500, error: 'Internal Server Error', message: 'unexpected error' });
  });

  it('keeps the status of a client error and its message only when it may be shown', async () => {
    expect(await (await fetch(`${base}/client`)).json()).toEqual({ statusCode: 416, error: 'Range Not Satisfiable', message: 'range is wrong' });
    expect(await (await fetch(`${base}/hidden`)).json()).toEqual({ statusCode: 400, error: 'Bad Request', message: 'Bad Request' });
  });

  it('cuts off an answer that had started instead of appending to it', async () => {
    await expect(fetch(`${base}/half`).then((res) => res.text())).rejects.toThrow();
  });
});
