/**
 * A vitest reporter for CI (`npm test -- --reporter=default
 * --reporter=./.ci/test-summary-reporter.mjs`): when the run ends, one line
 * per vitest project (vitest.config.ts: unit, sim, integration), e.g.
 *   integration tests: 14 passed, 0 skipped, 0 failed (6 files)
 * and, when SPECULA_TEST_SUMMARY names a file, the same counts as JSON there
 * for .ci/check-test-summary.mjs. "skipped" counts skipped, todo and
 * never-run tests; "failed" counts failed tests plus files that failed
 * outside any test (an import or a hook that threw: a file whose tests could
 * not run at all still counts as a failure).
 */
import { writeFileSync } from 'node:fs';

export default class TestSummaryReporter {
  onInit(vitest) {
    this.log = (line) => vitest.logger.log(line);
  }

  onTestRunEnd(testModules, unhandledErrors, reason) {
    const projects = {};
    for (const module of testModules) {
      const name = module.project.name || 'default';
      const p = (projects[name] ??= { files: 0, passed: 0, skipped: 0, failed: 0, failedFiles: 0 });
      p.files++;
      let tests = 0;
      for (const test of module.children.allTests()) {
        tests++;
        const state = test.result().state;
        if (state === 'passed') p.passed++;
        else if (state === 'failed') p.failed++;
        else p.skipped++;
      }
      if (module.errors().length > 0 || (tests === 0 && module.state() === 'failed')) {
        p.failedFiles++;
        p.failed++;
      }
    }
    const summary = { reason, unhandledErrors: unhandledErrors.length, projects };
    for (const [name, p] of Object.entries(projects).sort(([a], [b]) => a.localeCompare(b))) {
      this.log(`${name} tests: ${p.passed} passed, ${p.skipped} skipped, ${p.failed} failed (${p.files} files${p.failedFiles > 0 ? `, ${p.failedFiles} failed outside their tests` : ''})`);
    }
    if (process.env.SPECULA_TEST_SUMMARY) writeFileSync(process.env.SPECULA_TEST_SUMMARY, JSON.stringify(summary, null, 2) + '\n');
  }
}
