// Generates the static protobuf module (ESM + .d.ts) from proto/ into
// lib/codec/gen/, and copies it beside the compiled code in dist/.
// --js-only skips the .d.ts (a second of pbts): the build emits without
// checking types and declares none, so only typecheck and lint need it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const protoDir = 'proto/specula/v1';
const outDir = 'lib/codec/gen';
const distDir = 'dist/lib/codec/gen';
const protos = readdirSync(protoDir).filter((f) => f.endsWith('.proto')).map((f) => join(protoDir, f));
mkdirSync(outDir, { recursive: true });
const bin = (name) => join('node_modules', '.bin', name);
const js = join(outDir, 'specula.js');
execFileSync(bin('pbjs'), ['-t', 'static-module', '-w', 'es6', '--force-number', '--no-verify', '--no-convert', '--no-delimited', '--no-service', '-o', js, ...protos], { stdio: 'inherit' });
// protobufjs/minimal has no ESM entry with named exports; import the default.
writeFileSync(js, readFileSync(js, 'utf8').replace(/import \* as \$protobuf from "protobufjs\/minimal"/, 'import $protobuf from "protobufjs/minimal.js"'));
const jsOnly = process.argv.includes('--js-only');
if (!jsOnly) execFileSync(bin('pbts'), ['-o', join(outDir, 'specula.d.ts'), js], { stdio: 'inherit' });
mkdirSync(distDir, { recursive: true });
copyFileSync(js, join(distDir, 'specula.js'));
