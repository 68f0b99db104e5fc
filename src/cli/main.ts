// Process entry of the `nomoat` command (bin/nomoat.js imports this file): runs the CLI and sets the exit status.

import { runCli } from './run.js';

process.exitCode = await runCli(process.argv.slice(2));
