/**
 * The operations layer's door: the commands (`run`, `check`, `status`, `verify`, `health`), the CLI,
 * metrics and health. What `main.ts` and `mod.ts` may import of `lib/ops/`.
 *
 * @module
 */
export { checkConnectivity } from "./check.ts";
export { surveyLine, surveyStreams } from "./stream_survey.ts";
export type { CheckOptions, CheckResult } from "./check.ts";
export { helpText, parseCliArgs } from "./cli.ts";
export { checkHealth, defaultHealthUrl } from "./health.ts";
export type { HealthOptions, HealthResult } from "./health.ts";
export type { CliArgs } from "./cli.ts";
export { runService } from "./service.ts";
export type { ServiceOptions } from "./service.ts";
export { collectStatus } from "./status.ts";
export { formatStatusTable } from "./status_table.ts";
export type { ServerStatus, StatusOptions, StatusReport, StatusRow } from "./status.ts";
export { compareStream, formatVerifiedStream, formatVerifySummary, verifyAll } from "./verify.ts";
export type {
  CompareOptions,
  StreamComparison,
  VerifiedStream,
  VerifyOptions,
  VerifyReport,
} from "./verify.ts";
