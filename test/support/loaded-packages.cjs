// Preloaded into a gateway process by a test (`node --require <this> dist/main.js`): on SIGUSR2 it
// prints, on stdout, one line `loaded-packages: <JSON array>` naming each package in node_modules
// that has a module in require's cache (ESM packages loaded through require(esm) included).
'use strict';
process.on('SIGUSR2', () => {
  const names = new Set();
  for (const file of Object.keys(require.cache)) {
    const match = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (match) names.add(match[1]);
  }
  process.stdout.write(`loaded-packages: ${JSON.stringify([...names].sort())}\n`);
});
