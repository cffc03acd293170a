import Mocha from 'mocha';
import { relative } from 'node:path';

const { EVENT_SUITE_BEGIN, EVENT_SUITE_END, EVENT_RUN_END } = Mocha.Runner.constants;

/**
 * mocha's spec reporter, then a table of the time each test file took, hooks included, slowest
 * first: where the suite's time goes (CONTRIBUTING.md). `npm run test:timings`.
 */
class FileTimingsReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options: Mocha.MochaOptions) {
    super(runner, options);
    const started = new Map<string, number>();
    const took = new Map<string, number>();
    runner.on(EVENT_SUITE_BEGIN, (suite: Mocha.Suite) => {
      if (suite.file !== undefined && suite.parent?.root === true) started.set(suite.file, started.get(suite.file) ?? Date.now());
    });
    runner.on(EVENT_SUITE_END, (suite: Mocha.Suite) => {
      const begun = suite.file === undefined || suite.parent?.root !== true ? undefined : started.get(suite.file);
      if (begun !== undefined && suite.file !== undefined) took.set(suite.file, Date.now() - begun);
    });
    runner.once(EVENT_RUN_END, () => {
      const rows = [...took].sort((a, b) => b[1] - a[1]);
      const total = rows.reduce((sum, [, ms]) => sum + ms, 0);
      const lines = ['', '| file | seconds | share |', '| --- | --- | --- |',
        ...rows.map(([file, ms]) => `| \`${relative(process.cwd(), file)}\` | ${(ms / 1000).toFixed(1)} | ${(100 * ms / total).toFixed(1)} % |`),
        `| all files | ${(total / 1000).toFixed(1)} | |`, ''];
      process.stdout.write(lines.join('\n') + '\n');
    });
  }
}

export default FileTimingsReporter;
