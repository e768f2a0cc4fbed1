// Parses and semantically analyses a KQL query with Microsoft's Kusto
// language service (npm @kusto/language-service-next) against the
// documented SigninLogs and AADNonInteractiveUserSignInLogs schemas
// (signin-tables.json). Prints every diagnostic; exits 1 on any error or
// warning.
//
// usage: NODE_PATH=.../node_modules node check_kql.js QUERY.kql
const fs = require("fs");
const path = require("path");
require("@kusto/language-service-next/bridge.min.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.min.js");

const K = Kusto.Language;
const schema = JSON.parse(fs.readFileSync(path.join(__dirname, "signin-tables.json"), "utf8")).tables;
const tables = Object.entries(schema).map(([name, columns]) => {
  const text = "(" + columns.map(([c, t]) => `['${c}']:${t}`).join(", ") + ")";
  return new K.Symbols.TableSymbol.$ctor7(name, text, null);
});
const database = new K.Symbols.DatabaseSymbol.ctor("workspace", tables);
const globals = K.GlobalState.Default.WithDatabase(database);

const file = process.argv[2];
const code = K.KustoCode.ParseAndAnalyze(fs.readFileSync(file, "utf8"), globals);
const diagnostics = code.GetDiagnostics();
let bad = 0;
for (let i = 0; i < diagnostics.Count; i++) {
  const d = diagnostics.getItem(i);
  bad += d.Severity === "Error" || d.Severity === "Warning" ? 1 : 0;
  console.log(`${file}: ${d.Severity} ${d.Code} at ${d.Start}: ${d.Message}`);
}
if (bad > 0) process.exit(1);
console.log(`${file}: parsed and analysed by the Kusto language service, no errors or warnings`);
