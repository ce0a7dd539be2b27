// Read gongkai's events from a durable JetStream consumer and validate every one of them
// against the published JSON Schemas (docs/schemas), as a downstream team would.
//
//   npm ci
//   GONGKAI_NATS_NKEY=../../var/credentials/subscriber.nk node subscribe.mjs
//
// Environment (all optional but the credential):
//   NATS_URL             nats://127.0.0.1:4222
//   GONGKAI_NATS_NKEY    the subscriber's NKey seed file (the embedded default, `gongkai up`)
//   NATS_USER, NATS_PASSWORD   the subscriber's password instead (compose, Kubernetes)
//   GONGKAI_DURABLE      sub-subscriber-1 (the subscriber may use sub-subscriber-1 .. -8 only)
//   GONGKAI_FILTER       gk.ev.> (one event type: gk.ev.*.*.ViolationRecorded)
//   GONGKAI_SCHEMAS      ../../docs/schemas
//   GONGKAI_FOLLOW=1     keep reading new events; otherwise stop once the consumer has
//                        delivered everything the stream held, and print the count
//   GONGKAI_DELETE=1     delete the durable consumer at the end (start over next time)
//
// Exit status: 0 when every event read validated, 1 when one did not (each failure is
// printed), 2 when the example could not run (no credential, no schemas, no server).

import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import {
  connect,
  nkeyAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const STREAM = "GONGKAI";
const env = process.env;
const url = env.NATS_URL ?? "nats://127.0.0.1:4222";
const durable = env.GONGKAI_DURABLE ?? "sub-subscriber-1";
const filter = env.GONGKAI_FILTER ?? "gk.ev.>";
const schemaDir = resolve(
  env.GONGKAI_SCHEMAS
    ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "docs", "schemas"),
);
const follow = env.GONGKAI_FOLLOW === "1";

function fail(message) {
  console.error(`subscribe: ${message}`);
  process.exit(2);
}

// ---- the schemas ---------------------------------------------------------------------------

// Every file of docs/schemas, by $id: one schema per event type and version
// (`PostSubmitted.v2.json`), the envelope that dispatches by type, and anything they refer to.
function loadValidator(dir) {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  let files;
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  } catch (err) {
    fail(`cannot read the schemas in ${dir}: ${err.message}`);
  }
  const ids = new Map();
  for (const file of files) {
    const schema = JSON.parse(readFileSync(join(dir, file), "utf8"));
    if (schema.$schema === undefined || schema.type === undefined && !schema.allOf
        && !schema.oneOf && !schema.anyOf) {
      continue; // not a JSON Schema (the upcast table beside them)
    }
    const id = schema.$id ?? file;
    ajv.addSchema(schema, id);
    ids.set(file, id);
  }
  if (ids.size === 0) fail(`no JSON Schema in ${dir}`);
  // The schema an event is checked against: its type at its version; an older layout without
  // versions in the names has one file per type.
  return (event) => {
    const id = ids.get(`${event.type}.v${event.schema_version}.json`)
      ?? ids.get(`${event.type}.json`);
    if (id === undefined) {
      return [`no schema for ${event.type} v${event.schema_version}`];
    }
    const validate = ajv.getSchema(id);
    const errors = [];
    if (!validate(event)) errors.push(...validate.errors);
    const envelope = ids.get("envelope.json");
    if (envelope !== undefined) {
      const check = ajv.getSchema(envelope);
      if (!check(event)) errors.push(...check.errors);
    }
    return errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
  };
}

// ---- the connection ------------------------------------------------------------------------

function authenticator() {
  if (env.GONGKAI_NATS_NKEY) {
    let seed;
    try {
      seed = readFileSync(env.GONGKAI_NATS_NKEY, "utf8").trim();
    } catch (err) {
      fail(`cannot read the NKey seed: ${err.message}`);
    }
    return nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (env.NATS_USER) {
    return usernamePasswordAuthenticator(env.NATS_USER, env.NATS_PASSWORD ?? "");
  }
  fail("give the subscriber's credential: GONGKAI_NATS_NKEY=FILE or NATS_USER/NATS_PASSWORD");
}

async function main() {
  const check = loadValidator(schemaDir);
  let nc;
  try {
    nc = await connect({ servers: url, authenticator: authenticator(), name: durable });
  } catch (err) {
    fail(`cannot connect to ${url}: ${err.message}`);
  }
  const jsm = await jetstreamManager(nc);
  // Created once, then reused: the server keeps its position, so a restart resumes after the
  // last acknowledged event (a durable's configuration cannot be changed to another filter).
  await jsm.consumers.add(STREAM, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: filter,
  });
  const consumer = await jetstream(nc).consumers.get(STREAM, durable);

  let read = 0;
  let failed = 0;
  let last = 0;
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 500, expires: 2000 });
    let got = 0;
    for await (const msg of batch) {
      got += 1;
      read += 1;
      last = Math.max(last, msg.seq);
      let problems;
      let event;
      try {
        event = msg.json();
        problems = check(event);
      } catch (err) {
        problems = [`not JSON: ${err.message}`];
      }
      if (problems.length > 0) {
        failed += 1;
        const what = event ? `${event.type} v${event.schema_version} ${event.event_id}` : "";
        console.error(`INVALID seq ${msg.seq} ${msg.subject} ${what}`);
        for (const p of problems.slice(0, 5)) console.error(`  ${p}`);
      }
      // A downstream system would act on the event here, then acknowledge it.
      msg.ack();
    }
    if (got === 0 && !follow) {
      await nc.flush(); // the acks above reach the server before it is asked what is left
      const info = await consumer.info();
      if (info.num_pending === 0 && info.num_ack_pending === 0) break;
    }
  }
  if (env.GONGKAI_DELETE === "1") {
    await jsm.consumers.delete(STREAM, durable);
  }
  await nc.drain();
  console.log(
    `read ${read} events, ${read - failed} valid, ${failed} invalid; `
    + `last stream sequence ${last}`,
  );
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((err) => fail(err.stack ?? String(err)));
