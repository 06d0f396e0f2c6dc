// Builds the SDK: ESM and CommonJS for bundlers and Node (socket.io-client stays a dependency),
// a self-contained browser bundle (global `PushGateway`), and type declarations for both module
// systems. The package is "type": "commonjs"; dist/esm carries a package.json of its own saying
// "module", so Node loads index.js there as ESM without guessing (MODULE_TYPELESS_PACKAGE_JSON)
// and TypeScript reads the .d.ts files beside it as ESM declarations.
//
// Everything is built in a directory of its own and then swapped in for dist by two renames: a
// process that loads the SDK while another rebuilds it (`npm pack` runs this as prepack) finds the
// old build or the new one, never half of one (a dist/esm/index.js without its package.json
// loads as CommonJS and has no named exports).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const out = `dist.build-${process.pid}`;
rmSync(out, { recursive: true, force: true });
try {
  const common = { entryPoints: ['src/index.ts'], bundle: true, sourcemap: true, target: 'es2020', logLevel: 'warning' };
  await Promise.all([
    build({ ...common, format: 'esm', platform: 'neutral', external: ['socket.io-client'], outfile: `${out}/esm/index.js` }),
    build({ ...common, format: 'cjs', platform: 'node', external: ['socket.io-client'], outfile: `${out}/cjs/index.cjs` }),
    build({ ...common, format: 'iife', platform: 'browser', globalName: 'PushGateway', minify: true, outfile: `${out}/push-client.browser.js` }),
  ]);
  execFileSync(process.execPath, ['../node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--outDir', `${out}/types`], { stdio: 'inherit' });

  // dist/types holds the CommonJS declarations (extensionless relative imports resolve there). ESM
  // resolution needs the extension, so dist/esm gets copies whose relative imports name `.js`.
  mkdirSync(`${out}/esm`, { recursive: true });
  writeFileSync(`${out}/esm/package.json`, '{ "type": "module" }\n');
  for (const file of readdirSync(`${out}/types`).filter((f) => f.endsWith('.d.ts'))) {
    const source = readFileSync(`${out}/types/${file}`, 'utf8');
    writeFileSync(`${out}/esm/${file}`, source.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+?)\2/g, '$1$2$3.js$2'));
  }

  const old = `dist.old-${process.pid}`;
  if (existsSync('dist')) renameSync('dist', old);
  renameSync(out, 'dist');
  rmSync(old, { recursive: true, force: true });
} finally {
  rmSync(out, { recursive: true, force: true });
}
