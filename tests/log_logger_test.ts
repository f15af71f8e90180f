import assert from "node:assert/strict";
import { fileWriter, Logger } from "../lib/log/logger.ts";

Deno.test("logger: levels filter, formats, secret fields masked", () => {
  const cases: { format: "common" | "json"; level: "DEBUG" | "INFO" | "WARN" | "ERROR"; expectLines: number }[] = [
    { format: "json", level: "DEBUG", expectLines: 4 },
    { format: "json", level: "WARN", expectLines: 2 },
    { format: "common", level: "ERROR", expectLines: 1 },
  ];
  for (const tc of cases) {
    const lines: string[] = [];
    const log = new Logger({ level: tc.level, format: tc.format, write: (l) => lines.push(l) }).child("kv");
    log.debug("d");
    log.info("i", { password: "hunter2", endpoint: "127.0.0.1:2379" });
    log.warn("w", { token: "t0k3n" });
    log.error("e", { secret: "s3cr3t", key: "abc" });
    assert.equal(lines.length, tc.expectLines, `${tc.format}/${tc.level}`);
    const all = lines.join("\n");
    for (const secret of ["hunter2", "t0k3n", "s3cr3t"]) assert.ok(!all.includes(secret), `${secret} masked`);
    if (tc.format === "json") {
      const last = JSON.parse(lines.at(-1)!);
      assert.equal(last.module, "kv");
      assert.equal(last.level, "error");
      assert.equal(last.msg, "e");
    } else {
      assert.match(lines.at(-1)!, /^\d{4}-\d\d-\d\dT[\d:.]+Z ERROR \[kv\] e secret="\*\*\*" key="\*\*\*"$/);
    }
  }
});

Deno.test("logger: filePath appends lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = fileWriter(`${dir}/portico.log`);
    const log = new Logger({ level: "INFO", format: "common", write });
    log.info("one");
    log.info("two");
    const text = await Deno.readTextFile(`${dir}/portico.log`);
    assert.deepEqual(text.trim().split("\n").map((l) => l.split(" ").at(-1)), ["one", "two"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
