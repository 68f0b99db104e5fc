// Placeholder while this session builds the command (replaced by its owner).
import { defineCommand } from './command.js';

export const command = defineCommand({ name: 'eval judge', summary: 'being built', usage: '', flags: {}, examples: [], run: () => { throw new Error('not built yet'); } });
