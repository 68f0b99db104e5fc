// Child process of resolveModelPath: downloads one spec into the cache with a progress bar on stderr. Exit status 0
// when the model is in the cache, 1 with the reason on stderr otherwise; nothing on stdout (the parent's may be JSON).

import { pullModel } from './download.js';

const spec = process.argv[2];
try {
  if (spec === undefined) throw new Error('usage: pull-child.js hf://OWNER/REPO[:TAG]');
  const r = await pullModel(spec);
  process.stderr.write(`nomoat: ${spec} → ${r.path}\n`);
} catch (e) {
  process.stderr.write(`nomoat: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
