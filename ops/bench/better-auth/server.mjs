// The better-auth yardstick for the login row: better-auth's email and
// password sign-in on Node, with the same Argon2id parameters identity uses
// (@node-rs/argon2: m=19456 KiB, t=2, p=1), its rate limiter off as
// identity's is in the bench. Sessions and users live in better-auth's
// memory adapter: no database at all, which only flatters the yardstick.
//
//   node server.mjs PORT
import http from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { hash, verify, Algorithm } from "@node-rs/argon2";

const port = Number(process.argv[2] || 3000);
const params = { algorithm: Algorithm.Argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };

const auth = betterAuth({
  baseURL: `http://127.0.0.1:${port}`,
  secret: "bench-secret-0123456789abcdef0123456789abcdef",
  database: memoryAdapter({ user: [], session: [], account: [], verification: [] }),
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  emailAndPassword: {
    enabled: true,
    password: {
      hash: (password) => hash(password, params),
      verify: ({ hash: stored, password }) => verify(stored, password),
    },
  },
});

http.createServer(toNodeHandler(auth)).listen(port, "127.0.0.1", () => {
  console.log(`better-auth on ${port}`);
});
