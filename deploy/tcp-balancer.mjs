// A minimal round-robin TCP balancer, so that compose.yaml runs with nothing but the node and
// postgres images. In production, put the replicas behind your own load balancer (HAProxy, nginx,
// Traefik, a cloud load balancer) with a health check on GET /readyz.
//   BACKENDS=ztp-1:8080,ztp-2:8080 LISTEN_PORT=8080 node tcp-balancer.mjs
import net from 'node:net';

const listenPort = Number(process.env.LISTEN_PORT ?? 8080);
const backends = (process.env.BACKENDS ?? '')
  .split(',')
  .filter(Boolean)
  .map((b) => ({
    host: b.slice(0, b.lastIndexOf(':')),
    port: Number(b.slice(b.lastIndexOf(':') + 1)),
  }));
if (backends.length === 0 || backends.some((b) => !b.host || !Number.isInteger(b.port))) {
  console.error('tcp-balancer: BACKENDS must be host:port[,host:port...]');
  process.exit(2);
}

let next = 0;
/** Each connection goes to the next backend; one that refuses is skipped (the next is tried). */
function forward(client, attempt = 0) {
  const backend = backends[next++ % backends.length];
  const upstream = net.connect(backend);
  upstream.once('connect', () => {
    client.pipe(upstream).pipe(client);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
  });
  upstream.once('error', () => {
    if (!upstream.connecting) return;
    if (attempt + 1 < backends.length) forward(client, attempt + 1);
    else client.destroy();
  });
  client.once('close', () => upstream.destroy());
}

const server = net.createServer({ pauseOnConnect: true }, (client) => {
  client.on('error', () => client.destroy());
  forward(client);
});
server.listen(listenPort, () =>
  console.log(
    `tcp-balancer: :${listenPort} -> ${backends.map((b) => `${b.host}:${b.port}`).join(', ')}`,
  ),
);
// PID 1 in its container: exit on the orchestrator's stop signal instead of being killed later.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
