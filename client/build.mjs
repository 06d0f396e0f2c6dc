// Builds the SDK: ESM and CommonJS for bundlers and Node (socket.io-client stays a dependency),
// a self-contained browser bundle (global `PushGateway`), and type declarations for both module
// systems. The package is "type": "commonjs"; dist/esm carries a package.json of its own saying
// "module", so Node loads index.js there as ESM without guessing (MODULE_TYPELESS_PACKAGE_JSON)
// and TypeScript reads the .d.ts files beside it as ESM declarations.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
const common = { entryPoints: ['src/index.ts'], bundle: true, sourcemap: true, target: 'es2020', logLevel: 'warning' };
await Promise.all([
  build({ ...common, format: 'esm', platform: 'neutral', external: ['socket.io-client'], outfile: 'dist/esm/index.js' }),
  build({ ...common, format: 'cjs', platform: 'node', external: ['socket.io-client'], outfile: 'dist/cjs/index.cjs' }),
  build({ ...common, format: 'iife', platform: 'browser', globalName: 'PushGateway', minify: true, outfile: 'dist/push-client.browser.js' }),
]);
execFileSync(process.execPath, ['../node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });

// dist/types holds the CommonJS declarations (extensionless relative imports resolve there). ESM
// resolution needs the extension, so dist/esm gets copies whose relative imports name `.js`.
mkdirSync('dist/esm', { recursive: true });
writeFileSync('dist/esm/package.json', '{ "type": "module" }\n');
for (const file of readdirSync('dist/types').filter((f) => f.endsWith('.d.ts'))) {
  const source = readFileSync(`dist/types/${file}`, 'utf8');
  writeFileSync(`dist/esm/${file}`, source.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+?)\2/g, '$1$2$3.js$2'));
}
