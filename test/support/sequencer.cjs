// Jest runs test files in this order: the network-lab presence run first (it holds one worker for
// about five and a half minutes, mostly waiting on timers and links, so the rest of the suite goes
// through the other workers meanwhile), then the Cluster's own spec (the longest after it: a
// cluster of 3 masters and 3 replicas, and a failover), then Jest's own order (slowest known first,
// else largest).
const Sequencer = require('@jest/test-sequencer').default;

const FIRST = [/netlab-presence\.e2e-spec\.ts$/, /redis-cluster\.e2e-spec\.ts$/];

class LongFirstSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    const rank = (t) => {
      const i = FIRST.findIndex((re) => re.test(t.path));
      return i === -1 ? FIRST.length : i;
    };
    // Array.prototype.sort is stable: within a rank, Jest's order stands.
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}

module.exports = LongFirstSequencer;
