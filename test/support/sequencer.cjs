// Jest runs test files in this order: the network-lab presence run first (it holds one worker for
// about five and a half minutes, mostly waiting on timers and links, so the rest of the suite goes
// through the other worker meanwhile), then Jest's own order (slowest known first, else largest).
const Sequencer = require('@jest/test-sequencer').default;

const FIRST = /netlab-presence\.e2e-spec\.ts$/;

class LabFirstSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    return [...sorted.filter((t) => FIRST.test(t.path)), ...sorted.filter((t) => !FIRST.test(t.path))];
  }
}

module.exports = LabFirstSequencer;
