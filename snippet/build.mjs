// Build the tag into the file the Python package serves, and print its sizes.
// `node build.mjs [outfile]`; the budget is checked by the test suite.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync, brotliCompressSync } from 'node:zlib';

const outfile = process.argv[2] || '../server/sitecue/static/cue.js';
await build({
  entryPoints: ['src/main.js'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2019'],
  legalComments: 'none',
  outfile,
});
const code = readFileSync(outfile);
console.log(
  `${outfile}: ${code.length} B, gzip ${gzipSync(code, { level: 9 }).length} B, brotli ${brotliCompressSync(code).length} B`,
);
