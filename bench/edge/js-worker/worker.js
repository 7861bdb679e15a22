// The idiomatic JavaScript Worker for pixport's upload, the baseline that
// bench/edge measures the Rust worker against: `request.formData()` buffers
// the whole body, `crypto.subtle.digest` hashes the file, aws4fetch signs,
// `fetch` PUTs the file to S3 and the same Data API calls record the row
// (insert `uploading`; then in a transaction update to `pending` and
// rewrite the tags; then read the row back). Only what a benchmark needs:
// it checks the magic bytes but not the header, and has no other routes.
import { AwsClient } from "aws4fetch";

// Clients are built once per isolate, as a Worker would keep them.
let clients;

function clientsFor(env) {
  if (!clients) {
    const creds = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
    clients = {
      s3: new AwsClient({ ...creds, service: "s3", region: env.S3_REGION }),
      rds: new AwsClient({ ...creds, service: "rds-data", region: env.S3_REGION }),
      tokens: new Set(env.API_TOKENS.split(",").map((t) => t.trim())),
    };
  }
  return clients;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function ulid() {
  let t = Date.now();
  let time = "";
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rnd = crypto.getRandomValues(new Uint8Array(16));
  let rest = "";
  for (const b of rnd) rest += CROCKFORD[b % 32];
  return time + rest;
}

function base64(buf) {
  let s = "";
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s);
}

async function ownerOf(token) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return [...new Uint8Array(d)].slice(0, 16).map((b) => b.toString(16).padStart(2, "0")).join("");
}

function formatOf(b) {
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return ["jpeg", "image/jpeg"];
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return ["png", "image/png"];
  return null;
}

function err(status, code, message) {
  return Response.json({ error: { code, message } }, { status });
}

const str = (v) => (v == null ? { isNull: true } : { stringValue: String(v) });
const long = (v) => ({ longValue: v });

async function dataApi(env, rds, path, body) {
  const r = await rds.fetch(env.DATA_API_ENDPOINT + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ resourceArn: env.DB_CLUSTER_ARN, secretArn: env.DB_SECRET_ARN, database: env.DB_NAME, ...body }),
  });
  if (!r.ok) throw new Error(`data api ${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function upload(request, env) {
  const { s3, rds, tokens } = clientsFor(env);
  const token = (request.headers.get("authorization") || "").replace(/^Bearer /, "");
  if (!tokens.has(token)) return err(401, "unauthorized", "a valid bearer token is required");
  const form = await request.formData();
  const file = form.get("file");
  if (!(file instanceof File)) return err(400, "missing_file", "no file part");
  const bytes = new Uint8Array(await file.arrayBuffer());
  const fmt = formatOf(bytes);
  if (!fmt) return err(415, "unsupported_media_type", "not a JPEG or PNG");
  const sha = base64(await crypto.subtle.digest("SHA-256", bytes));
  const title = form.get("title");
  const tags = (form.get("tags") || "").split(",").map((t) => t.trim()).filter(Boolean);
  const id = ulid();
  const key = `originals/${id}`;
  const owner = await ownerOf(token);

  await dataApi(env, rds, "/Execute", {
    sql: "INSERT INTO images (id, owner, status, title, tags, extra, file_name, content_type, format, original_key) " +
      "VALUES (:id, :owner, 'uploading', :title, :tags, '{}', :file_name, :content_type, :format, :original_key)",
    parameters: [
      { name: "id", value: str(id) }, { name: "owner", value: str(owner) }, { name: "title", value: str(title) },
      { name: "tags", value: str(JSON.stringify(tags)) }, { name: "file_name", value: str(file.name) },
      { name: "content_type", value: str(fmt[1]) }, { name: "format", value: str(fmt[0]) },
      { name: "original_key", value: str(key) },
    ],
  });
  const put = await s3.fetch(`${env.S3_ENDPOINT}/${env.S3_BUCKET}/${key}`, {
    method: "PUT",
    headers: { "content-type": fmt[1], "x-amz-checksum-sha256": sha },
    body: bytes,
  });
  if (!put.ok) throw new Error(`s3 put: ${put.status} ${await put.text()}`);
  const { transactionId } = await dataApi(env, rds, "/BeginTransaction", {});
  await dataApi(env, rds, "/Execute", {
    transactionId,
    sql: "UPDATE images SET status = IF(status = 'uploading', 'pending', status), bytes = :bytes, " +
      "checksum_sha256 = :sha, updated_at = CURRENT_TIMESTAMP(3) WHERE id = :id",
    parameters: [{ name: "bytes", value: long(bytes.length) }, { name: "sha", value: str(sha) }, { name: "id", value: str(id) }],
  });
  await dataApi(env, rds, "/Execute", {
    transactionId, sql: "DELETE FROM image_tags WHERE image_id = :id", parameters: [{ name: "id", value: str(id) }],
  });
  if (tags.length) {
    await dataApi(env, rds, "/BatchExecute", {
      transactionId, sql: "INSERT INTO image_tags (tag, image_id) VALUES (:tag, :id)",
      parameterSets: tags.map((t) => [{ name: "tag", value: str(t) }, { name: "id", value: str(id) }]),
    });
  }
  await dataApi(env, rds, "/CommitTransaction", { transactionId });
  const got = await dataApi(env, rds, "/Execute", {
    sql: "SELECT id, status, bytes, checksum_sha256, original_key FROM images WHERE id = :id",
    parameters: [{ name: "id", value: str(id) }],
    formatRecordsAs: "JSON",
  });
  const [row] = JSON.parse(got.formattedRecords);
  return Response.json(row, { status: 201, headers: { location: `/images/${id}` } });
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/healthz") return Response.json({ status: "ok" });
    if (pathname === "/images" && request.method === "POST") {
      try {
        return await upload(request, env);
      } catch (e) {
        console.error(e);
        return err(502, "upstream_failed", "storing the upload failed");
      }
    }
    return err(404, "not_found", "no such route");
  },
};
