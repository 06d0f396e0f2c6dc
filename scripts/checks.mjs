#!/usr/bin/env node
// `npm test`'s first step: the lint beside the typecheck and then the build, instead of all three one
// after the other (on 2 cores the lint alone takes most of a minute, the other two about as long;
// three at once only contend for the cores). Each
// step's output is printed whole when it ends, so the logs do not interleave; the exit code is
// non-zero if any step failed. None of them reads what another writes: lint and typecheck read
// src/, test/ and client/src/, the build writes dist/ and client/dist/.
import { spawn } from 'node:child_process';

/** Lanes run side by side, the steps of a lane one after the other. */
const LANES = [['lint'], ['typecheck', 'build']];
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const run = (step) =>
  new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(npm, ['run', '--silent', step], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code, signal) => {
      const ok = code === 0;
      const took = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`\n== npm run ${step}: ${ok ? 'ok' : `failed (${signal ?? `exit ${code}`})`} in ${took} s\n${output}`);
      resolve(ok);
    });
  });

const lane = async (steps) => {
  for (const step of steps) if (!(await run(step))) return false;
  return true;
};
const results = await Promise.all(LANES.map(lane));
process.exitCode = results.every(Boolean) ? 0 : 1;
