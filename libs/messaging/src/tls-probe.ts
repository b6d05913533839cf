/**
 * Why did a TLS connection fail? With TLS 1.3 a server that refuses the
 * client certificate says so only after the client considers the handshake
 * done, and the NATS client then just times out. This probe repeats the
 * handshake on a plain socket and listens for the server's alert, so
 * start-up can say "the server refused the client certificate" instead of
 * waiting for NATS forever.
 */
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';

export type TlsProbeResult = { ok: true } | { ok: false; code: string; message: string } | { ok: 'unknown'; message: string };

export function probeTls(
  host: string,
  port: number,
  files: { caFile?: string; certFile?: string; keyFile?: string },
  timeoutMs = 3_000,
): Promise<TlsProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const socket = tcpConnect({ host, port });
    const done = (r: TlsProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: 'unknown', message: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => done({ ok: 'unknown', message: err.code ?? err.message }));
    let info = '';
    const onInfo = (chunk: Buffer) => {
      info += chunk.toString('latin1');
      if (!info.includes('\r\n')) return;
      socket.off('data', onInfo);
      socket.pause();
      let tlsSocket;
      try {
        tlsSocket = tlsConnect({
          socket,
          servername: /^\d+\.\d+\.\d+\.\d+$/.test(host) ? undefined : host,
          ca: files.caFile ? readFileSync(files.caFile) : undefined,
          cert: files.certFile ? readFileSync(files.certFile) : undefined,
          key: files.keyFile ? readFileSync(files.keyFile) : undefined,
        });
      } catch (err) {
        done({ ok: false, code: (err as NodeJS.ErrnoException).code ?? 'TLS', message: (err as Error).message });
        return;
      }
      tlsSocket.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, code: err.code ?? 'TLS', message: err.message }));
      tlsSocket.once('secureConnect', () => tlsSocket.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n'));
      // Any answer (PONG, or -ERR about credentials) means TLS itself was accepted.
      tlsSocket.once('data', () => done({ ok: true }));
      tlsSocket.once('close', () => done({ ok: false, code: 'CLOSED', message: 'the server closed the connection after the TLS handshake' }));
    };
    socket.on('data', onInfo);
  });
}
