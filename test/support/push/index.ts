/**
 * Local protocol servers for native push, for tests that must prove the bytes on the wire:
 * - `WebPushTestServer` (HTTPS, VAPID check + aes128gcm decryption),
 * - `ApnsTestServer` (HTTP/2 TLS, provider-token and `apns-*` header checks),
 * - `FcmTestServer` (OAuth token endpoint + `messages:send`).
 * Each: `await X.start()`, `.received` (checked requests, `problems` empty when right),
 * `.script.reply({ status, headers, body })` / `.script.reply({ drop: true })` for the next requests,
 * `.script.down()` to drop every request, `.waitForRequests(n)`, `.close()`. They share one
 * self-signed certificate: `testTls().caFile` is the NODE_EXTRA_CA_CERTS for gateway processes.
 */
export { ReplyScript, ScriptedReply, waitForCount } from './replies';
export { testTls, TestTls } from './tls';
export { ReceivedWebPush, TestSubscription, WebPushTestServer } from './web-push-server';
export { ApnsServerOptions, ApnsTestServer, ReceivedApns } from './apns-server';
export { FcmServerOptions, FcmTestServer, ReceivedFcm, ReceivedTokenRequest } from './fcm-server';
