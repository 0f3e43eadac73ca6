// better-sse behind Node's own http server: GET /sub opens a session on the
// one channel, POST /pub broadcasts its body to every session as one event.
// `node better-sse.mjs PORT` prints READY once it listens.
import http from "node:http";
import { createChannel, createSession } from "better-sse";

const port = Number(process.argv[2]);
const channel = createChannel();
// The body goes out as it came, not JSON-quoted; no keep-alive comments
// during a run (calscan's beat every 15 s would not fall in one either).
const options = { serializer: (data) => String(data), keepAlive: null };

http
  .createServer(async (req, res) => {
    if (req.method === "GET" && req.url === "/sub") {
      const session = await createSession(req, res, options);
      channel.register(session);
      res.write(": ok\n\n");
    } else if (req.method === "POST" && req.url === "/pub") {
      let body = "";
      req.setEncoding("utf8");
      for await (const chunk of req) body += chunk;
      channel.broadcast(body);
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  })
  .listen(port, "127.0.0.1", () => console.log("READY"));
