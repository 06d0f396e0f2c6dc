// Builds the SDK: ESM and CommonJS for bundlers and Node (socket.io-client stays a dependency),
// a self-contained browser bundle (global `PushGateway`), and type declarations.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
const common = { entryPoints: ['src/index.ts'], bundle: true, sourcemap: true, target: 'es2020', logLevel: 'warning' };
await Promise.all([
  build({ ...common, format: 'esm', platform: 'neutral', external: ['socket.io-client'], outfile: 'dist/esm/index.js' }),
  build({ ...common, format: 'cjs', platform: 'node', external: ['socket.io-client'], outfile: 'dist/cjs/index.cjs' }),
  build({ ...common, format: 'iife', platform: 'browser', globalName: 'PushGateway', minify: true, outfile: 'dist/push-client.browser.js' }),
]);
execFileSync(process.execPath, ['../node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
