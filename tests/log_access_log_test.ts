import assert from "node:assert/strict";
import { type AccessEntry, clfTime, formatCommon, formatJson } from "../lib/log/access_log.ts";

const entry: AccessEntry = {
  clientIp: "192.0.2.7",
  time: new Date(Date.UTC(2026, 10, 23, 9, 5, 3)),
  method: "GET",
  path: "/a?b=1",
  protocol: "HTTP/1.1",
  status: 201,
  size: 12,
  referer: null,
  userAgent: 'curl "x"',
  requestCount: 7,
  router: "app@file",
  serverUrl: "http://10.0.0.1:80",
  durationMs: 3.4,
  entryPoint: "web",
};

Deno.test("access log: Traefik common format", () => {
  assert.equal(clfTime(entry.time), "23/Nov/2026:09:05:03 +0000");
  assert.equal(
    formatCommon(entry),
    '192.0.2.7 - - [23/Nov/2026:09:05:03 +0000] "GET /a?b=1 HTTP/1.1" 201 12 "-" "curl \\"x\\"" 7 "app@file" "http://10.0.0.1:80" 3ms',
  );
  assert.match(formatCommon({ ...entry, size: undefined }), /" 201 - "/);
});

Deno.test("access log: JSON format with Traefik's field names", () => {
  const json = JSON.parse(formatJson(entry));
  assert.equal(json.ClientHost, "192.0.2.7");
  assert.equal(json.RequestMethod, "GET");
  assert.equal(json.RequestPath, "/a?b=1");
  assert.equal(json.DownstreamStatus, 201);
  assert.equal(json.DownstreamContentSize, 12);
  assert.equal(json.RouterName, "app@file");
  assert.equal(json.ServiceURL, "http://10.0.0.1:80");
  assert.equal(json.Duration, 3_400_000, "nanoseconds, as Traefik");
  assert.equal(json.entryPointName, "web");
  assert.equal(json["request_User-Agent"], 'curl "x"');
});
