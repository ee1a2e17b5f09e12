/**
 * Run by `deno task compile` when `deno compile` failed: says how to build
 * without internet, and exits 1.
 *
 * `deno compile` embeds the program in Deno's runtime for the platform,
 * denort. It reads it from the file `DENORT_BIN` names when that is set;
 * otherwise from `$DENO_DIR/dl/release/v<version>/denort-<target>.zip`,
 * which it downloads from dl.deno.land the first time. A machine without
 * internet needs one of the two: this script tells which is missing.
 *
 * @module
 */

/** Where `deno compile` keeps the runtime it downloaded, and where it downloads it from. */
export function denortLocations(
  denoDir: string,
  options: { version: string; target: string },
): { cached: string; url: string } {
  const suffix = `release/v${options.version}/denort-${options.target}.zip`;
  return { cached: `${denoDir}/dl/${suffix}`, url: `https://dl.deno.land/${suffix}` };
}

/** The advice printed after a failed `deno compile`, given what is there. */
export function compileAdvice(
  denortBin: string | undefined,
  where: { cached: string; url: string; cachedExists: boolean; binIsFile: boolean },
): string {
  const lines = ["deno task compile: deno compile failed (its message is above)."];
  if (denortBin !== undefined) {
    lines.push(
      where.binIsFile
        ? `DENORT_BIN is set to "${denortBin}": it must be the denort of this Deno (unzipped from ${where.url}).`
        : `DENORT_BIN is set to "${denortBin}", which is not a file: expected the denort unzipped from ${where.url}.`,
    );
    return lines.join("\n");
  }
  if (where.cachedExists) {
    lines.push(`Deno's runtime (denort) is in the cache ("${where.cached}"): the cause is above.`);
    return lines.join("\n");
  }
  lines.push(
    "deno compile needs Deno's runtime for this platform (denort), which it downloads once from",
    `  ${where.url}`,
    `and keeps in "${where.cached}". Without internet, fetch that file on a machine that has it,`,
    "bring it here and either unzip it and point DENORT_BIN at the denort inside:",
    "  unzip denort-*.zip -d /opt/denort && DENORT_BIN=/opt/denort/denort deno task compile",
    "or put the zip itself where the cache expects it:",
    `  mkdir -p "${
      where.cached.slice(0, where.cached.lastIndexOf("/"))
    }" && cp denort-*.zip "${where.cached}"`,
  );
  return lines.join("\n");
}

async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir: string }).denoDir;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const locations = denortLocations(await denoDir(), {
    version: Deno.version.deno,
    target: Deno.build.target,
  });
  const denortBin = Deno.env.get("DENORT_BIN") || undefined;
  console.error(compileAdvice(denortBin, {
    ...locations,
    cachedExists: isFile(locations.cached),
    binIsFile: denortBin !== undefined && isFile(denortBin),
  }));
  Deno.exit(1);
}
