// Build the tag into the file the Python package serves (and its brotli copy), and print
// its sizes.
// `node build.mjs [outfile]`; the budget is checked by the test suite.
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
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
// Brotli is written beside it, so the server needs no brotli library of its own.
const brotli = brotliCompressSync(code);
writeFileSync(outfile + '.br', brotli);
console.log(
  `${outfile}: ${code.length} B, gzip ${gzipSync(code, { level: 9 }).length} B, brotli ${brotli.length} B`,
);
