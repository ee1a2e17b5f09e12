/**
 * Helpers of the configuration tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ConfigFlags, loadConfig } from "../lib/config/load_config.ts";
import { ConfigError } from "../lib/errors.ts";

/** The problems of a configuration that must fail to load (a ConfigError, exit code 78). */
export function problemsOf(
  fileText: string | undefined,
  env: Record<string, string | undefined> = {},
  flags: ConfigFlags = {},
): readonly string[] {
  try {
    loadConfig(flags, env, fileText);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    assert.equal(error.exitCode, 78);
    assert.equal(error.message, error.problems.join("\n"));
    return error.problems;
  }
  assert.fail("expected loadConfig() to throw a ConfigError");
}
