/**
 * CI's verdict on a test run's summary (written by
 * .ci/test-summary-reporter.mjs): the integration project must have run tests
 * and, under CI, skipped none; a CI run that passes by skipping what needs a
 * NATS server is a failure. Usage: node .ci/check-test-summary.mjs <summary.json>
 */
import { readFileSync } from 'node:fs';

const PROJECT = 'integration';
const file = process.argv[2];
if (!file) {
  console.error('usage: node .ci/check-test-summary.mjs <summary.json>');
  process.exit(2);
}
let summary;
try {
  summary = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`ci: FAILED: no test summary in ${file} (${err.message}): did npm test run with --reporter=./.ci/test-summary-reporter.mjs?`);
  process.exit(1);
}
const p = summary.projects?.[PROJECT] ?? { files: 0, passed: 0, skipped: 0, failed: 0 };
const ran = p.passed + p.failed;
console.log(`ci: ${PROJECT} tests: ${p.passed} passed, ${p.skipped} skipped, ${p.failed} failed (${p.files} files)`);
const problems = [];
if (ran === 0) problems.push(`the ${PROJECT} project ran no test`);
if (p.skipped > 0) problems.push(`${p.skipped} ${PROJECT} test(s) skipped: under CI every integration test must run (is a nats-server installed? see .ci/ensure-nats-server)`);
if (p.failed > 0) problems.push(`${p.failed} ${PROJECT} test(s) failed`);
if (summary.unhandledErrors > 0) problems.push(`${summary.unhandledErrors} unhandled error(s) during the run`);
if (problems.length > 0) {
  for (const problem of problems) console.error(`ci: FAILED: ${problem}`);
  process.exit(1);
}
