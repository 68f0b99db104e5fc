// Runs when `node-gyp rebuild` fails at install time (no C compiler or Python): the install still succeeds, and this
// says why nomoat will run slower and how to fix it. Each command repeats the note until the addon is built.
process.stderr.write(
  '\n' +
  'nomoat: WARNING: the C addon could not be built (node-gyp needs a C compiler and Python 3).\n' +
  '  nomoat works, on its TypeScript backend, several times slower (e.g. ~12 instead of 50-70 tokens/s on the bundled model).\n' +
  '  Fix: install a compiler (Debian/Ubuntu: sudo apt install build-essential python3; Fedora: sudo dnf install gcc make python3;\n' +
  '  macOS: xcode-select --install; Windows: Visual Studio Build Tools with "Desktop development with C++"),\n' +
  '  then run `npm rebuild nomoat` (or `npm run build` in a clone).\n\n',
);
