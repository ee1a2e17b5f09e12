import assert from "node:assert/strict";
import { CONFIG_KEYS } from "../lib/config/keys.ts";
import { updateReadme } from "../scripts/config_docs.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("README's configuration tables match CONFIG_KEYS (run scripts/config_docs.ts --write)", async () => {
  // Compare after deno fmt's table alignment: regenerate, format both the same way.
  const expected = updateReadme(README);
  const format = async (text: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--ext", "md", "-"],
      stdin: "piped",
      stdout: "piped",
      signal: AbortSignal.timeout(60_000),
    }).spawn();
    const writer = out.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    return new TextDecoder().decode((await out.output()).stdout);
  };
  assert.equal(await format(README), await format(expected));
});

Deno.test("README documents every configuration key, command and exit code", () => {
  for (const { key } of CONFIG_KEYS) assert.ok(README.includes(`\`${key}\``), key);
  for (const command of ["`run`", "`run --once`", "`check`", "`status`", "`verify`"]) {
    assert.ok(README.includes(command), command);
  }
  for (const code of [0, 1, 2, 69, 78]) {
    assert.match(README, new RegExp(`^\\| ${code} +\\|`, "m"), `exit code ${code}`);
  }
});
