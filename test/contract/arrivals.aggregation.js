// The contract suite's view of the aggregator's own order: per key, the
// `data.seq` of every event the aggregator applied, in the order it applied
// them. One window for all of time (a century from 1970), so a key's list
// is never cut at a window boundary. Loaded with MESH_AGGREGATION_MODULES.
'use strict';

module.exports = {
  name: 'arrivals',
  window: { kind: 'tumbling', sizeMs: 100 * 365 * 24 * 3600 * 1000 },
  init: () => ({ seqs: [] }),
  add(acc, event) {
    acc.seqs.push(event.data.seq);
    return acc;
  },
};
